from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from app.accounts.auth import CtxDep, PrincipalDep
from app.core.schemas import WireModel, errors
from app.spaces import service as spaces

router = APIRouter(prefix="/v1/auth", tags=["auth"])


class WhoAmI(WireModel):
    key_id: str
    organization_id: str
    email: str | None
    plan: Literal["free", "developer", "business", "enterprise"]
    scope: Literal["organization", "subaccount"]
    subaccount_id: str | None
    default_space_id: str


@router.get("/whoami", response_model=WhoAmI, responses=errors())
async def whoami(ctx: CtxDep, p: PrincipalDep) -> WhoAmI:
    """The account behind the API key. A self-hosted server has no billing plan, so every key is `enterprise`."""
    default = await spaces.default_space(ctx, p)
    return WhoAmI(
        key_id=str(p.key_id),
        organization_id=str(p.org_id),
        email=None,
        plan="enterprise",
        scope="subaccount" if p.in_subaccount else "organization",
        subaccount_id=str(p.subaccount_id) if p.subaccount_id else None,
        default_space_id=str(default.id),
    )
