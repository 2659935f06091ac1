"""Path objects of saved proxies: `{proxyId}` resolved once (another account's, an unknown or a malformed
id is 404 `proxy.not_found` before the handler)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.accounts.auth import CtxDep, PrincipalDep
from app.proxies import service
from app.proxies.models import SavedProxy


async def path_proxy(ctx: CtxDep, p: PrincipalDep, proxy_id: str) -> SavedProxy:
    return await service.get(ctx, p, proxy_id)


PathProxy = Annotated[SavedProxy, Depends(path_proxy)]
