"""`/v1/proxies`: saved proxies a browser can leave through, and what this deployment offers of pools and
geo (saved custom proxies only: pools, geo targets and locations are empty lists, a pool is 404
`proxy.pool_not_found`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current.proxy_schemas import (
    ProxyCreate,
    ProxyDeletedOut,
    ProxyLocationOut,
    ProxyOut,
    ProxyPoolOut,
    ProxyTestOut,
    ProxyUpdate,
    pool_not_found,
)
from app.current.schemas import Order, page_model
from app.proxies import service
from app.proxies.paths import PathProxy

router = APIRouter(prefix="/v1/proxies", tags=["proxies"])
routers = (router,)

Page = Annotated[PageParams, Depends(page_params)]
OrderQuery = Annotated[Order, Query(description="By creation; newest first by default")]
Text = Annotated[str | None, Query(max_length=200)]
ProxyPage = page_model(ProxyOut)
ProxyPoolPage = page_model(ProxyPoolOut)
ProxyLocationPage = page_model(ProxyLocationOut)


@router.get("/pools", response_model=ProxyPoolPage, responses=errors(400))
async def list_pools(
    p: PrincipalDep,
    page: Page,
    country: Text = None,
    category: Text = None,
    available: bool | None = None,
    order: OrderQuery = "desc",
) -> ProxyPoolPage:
    """Managed static proxy pools: none in this deployment (it has saved custom proxies only)."""
    return ProxyPoolPage(data=[], has_more=False)


@router.get("/pools/{pool_id}", response_model=ProxyPoolOut, responses=errors(404))
async def get_pool(p: PrincipalDep, pool_id: str) -> ProxyPoolOut:
    """Always 404 `proxy.pool_not_found`: this deployment has no managed pools."""
    raise pool_not_found(pool_id)


@router.get("/geo", response_model=ProxyLocationPage, responses=errors(400))
@router.get("/locations", response_model=ProxyLocationPage, responses=errors(400))
async def list_locations(
    p: PrincipalDep,
    page: Page,
    q: Text = None,
    country: Text = None,
    region: Text = None,
    type: Text = None,
    pool: Text = None,
    order: OrderQuery = "desc",
) -> ProxyLocationPage:
    """Managed proxy geo targets and locations (one answer under both names): none in this deployment."""
    return ProxyLocationPage(data=[], has_more=False)


@router.get("", response_model=ProxyPage, responses=errors(400))
async def list_proxies(ctx: CtxDep, p: PrincipalDep, page: Page, order: OrderQuery = "desc") -> ProxyPage:
    rows, cursor = await service.list_proxies(ctx, p, page, newest_first=order == "desc")
    return ProxyPage(data=[ProxyOut.of(r) for r in rows], has_more=cursor is not None, next_cursor=cursor)


@router.post("", status_code=201, response_model=ProxyOut, responses=errors(400, 404, 409))
async def create_proxy(ctx: CtxDep, p: PrincipalDep, body: ProxyCreate, idem: IdempotencyDep) -> ProxyOut:
    """A custom proxy (http, https or socks5) from `url` or `protocol`, `host`, `port`; the password is
    stored encrypted and never returned (`hasPassword`). Managed kinds are refused: managed-rotating
    400 `proxy.managed_rotating.provider_unavailable`, managed-static 404 `proxy.pool_not_found`."""
    spec = service.ProxySpec(name=body.name, connection=body.connection())

    async def make() -> ProxyOut:
        return ProxyOut.of(await service.create(ctx, p, spec))

    return await idem.once(make, body.model_dump(mode="json"))


@router.get("/{proxy_id}", response_model=ProxyOut, responses=errors(404))
async def get_proxy(row: PathProxy) -> ProxyOut:
    return ProxyOut.of(row)


@router.patch("/{proxy_id}", response_model=ProxyOut, responses=errors(400, 404, 409))
async def update_proxy(ctx: CtxDep, row: PathProxy, body: ProxyUpdate, idem: IdempotencyDep) -> ProxyOut:
    """Fields given are changed (browsers use the new values from their next start); `password: null`
    removes the stored password, a new `url` replaces host, port, protocol and credentials."""
    connection = body.connection_over(service.current_connection(ctx, row))
    password_given = bool(body.model_fields_set & {"password", "url"})

    async def make() -> ProxyOut:
        return ProxyOut.of(await service.update_row(ctx, row, body.name, connection, password_given))

    return await idem.once(make, body.model_dump(mode="json", exclude_unset=True))


@router.delete("/{proxy_id}", response_model=ProxyDeletedOut, responses=errors(404, 409))
async def delete_proxy(ctx: CtxDep, row: PathProxy, idem: IdempotencyDep) -> ProxyDeletedOut:
    """Browsers that name it keep the setting; their next start fails with `proxy.not_found`."""

    async def make() -> ProxyDeletedOut:
        return ProxyDeletedOut(id=str(await service.delete_row(ctx, row)))

    return await idem.once(make, {})


@router.post("/{proxy_id}/test", response_model=ProxyTestOut, responses=errors(404, 409))
async def test_proxy(ctx: CtxDep, row: PathProxy, idem: IdempotencyDep) -> ProxyTestOut:
    """Fetches the server's test URL (BCTRL_PROXY_TEST_URL) through the proxy: `exitIp` is the address
    the far side saw. The proxy's own address must pass the browsers' egress policy. A failure is
    `ok: false` with `error` and `code` (proxy.auth_rejected, proxy.connection_refused, ...)."""

    async def make() -> ProxyTestOut:
        return ProxyTestOut.of(await service.test_row(ctx, row))

    return await idem.once(make, {})
