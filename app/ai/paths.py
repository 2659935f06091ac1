"""Path objects of AI credentials: `{credentialId}` resolved once (another account's, an unknown or a
malformed id is 404 `ai_credential.not_found` before the handler)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.accounts.auth import CtxDep, PrincipalDep
from app.ai import service
from app.ai.models import AiConnection


async def path_credential(ctx: CtxDep, p: PrincipalDep, credential_id: str) -> AiConnection:
    return await service.get(ctx, p, credential_id)


PathCredential = Annotated[AiConnection, Depends(path_credential)]
