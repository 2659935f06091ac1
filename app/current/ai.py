"""AI credentials and models in the current generation's shape (the bctrl 0.3 client).

`/v1/ai/credentials` is shared with the flat generation: these routes match only requests carrying
`BCTRL-Version` (CurrentRoute) and stay out of /openapi.json, which describes the flat ones.
`/v1/ai/models` is the current generation's alone: the models the account's saved credentials'
endpoints offer, asked of those endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.ai import catalog, service
from app.ai.paths import PathCredential
from app.ai.schemas import AiConnectionUpdate
from app.ai.service import CredentialFilter, CredentialSpec
from app.core.generation import CurrentRoute
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current.ai_schemas import (
    AiCredentialCreate,
    AiCredentialDeletedOut,
    AiCredentialOut,
    AiCredentialPage,
    AiCredentialTestOut,
    AiCredentialUpdate,
    AiModelOut,
    AiModelPage,
    CredentialProvider,
    CredentialStatus,
    ModelProvider,
    ModelStatus,
    stored_provider,
)
from app.current.schemas import Order

credentials = APIRouter(
    prefix="/v1/ai/credentials", tags=["ai credentials (current)"], route_class=CurrentRoute, include_in_schema=False
)
models = APIRouter(prefix="/v1/ai/models", tags=["ai models"])
routers: tuple[APIRouter, ...] = (credentials, models)

Page = Annotated[PageParams, Depends(page_params)]
OrderQuery = Annotated[Order, Query(description="By creation; newest first by default")]


@credentials.get("", response_model=AiCredentialPage, responses=errors(400))
async def list_credentials(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    provider: CredentialProvider | None = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    status: CredentialStatus | None = None,
    order: OrderQuery = "desc",
) -> AiCredentialPage:
    flt = CredentialFilter(
        provider=stored_provider(provider) if provider else None,
        label=name,
        enabled=None if status is None else status == "enabled",
    )
    rows, cursor = await service.list_credentials(ctx, p, page, flt, newest_first=order == "desc")
    return AiCredentialPage(data=[AiCredentialOut.of(r) for r in rows], has_more=cursor is not None, next_cursor=cursor)


@credentials.post("", status_code=201, response_model=AiCredentialOut, responses=errors(400, 409))
async def create_credential(
    ctx: CtxDep, p: PrincipalDep, body: AiCredentialCreate, idem: IdempotencyDep
) -> AiCredentialOut:
    """The key is stored encrypted and never returned; `test: true` keeps the credential only once its
    endpoint has accepted it (else 400 `ai_credential.verification_failed`, nothing kept)."""
    spec = CredentialSpec(
        label=body.name,
        provider=stored_provider(body.provider),
        base_url=body.base_url,
        api_key=body.api_key,
        default_model=body.default_model,
        enabled=body.status != "disabled",
    )

    async def make() -> AiCredentialOut:
        return AiCredentialOut.of(await service.create_credential(ctx, p, spec, verify=bool(body.test)))

    return await idem.once(make, body.model_dump(mode="json"))


@credentials.get("/{credential_id}", response_model=AiCredentialOut, responses=errors(404))
async def get_credential(row: PathCredential) -> AiCredentialOut:
    return AiCredentialOut.of(row)


@credentials.patch("/{credential_id}", response_model=AiCredentialOut, responses=errors(400, 404, 409))
async def update_credential(
    ctx: CtxDep, row: PathCredential, body: AiCredentialUpdate, idem: IdempotencyDep
) -> AiCredentialOut:
    """Fields given are changed; `apiKey: null` removes the stored key."""
    given = body.model_fields_set
    changes = {
        **({"label": body.name} if "name" in given and body.name is not None else {}),
        **({"enabled": body.status == "enabled"} if "status" in given and body.status is not None else {}),
        **{field: getattr(body, field) for field in ("api_key", "base_url", "default_model") if field in given},
    }
    update = AiConnectionUpdate.model_construct(_fields_set=set(changes), **changes)

    async def make() -> AiCredentialOut:
        return AiCredentialOut.of(await service.update_row(ctx, row, update))

    return await idem.once(make, body.model_dump(mode="json", exclude_unset=True))


@credentials.delete("/{credential_id}", response_model=AiCredentialDeletedOut, responses=errors(404, 409))
async def delete_credential(ctx: CtxDep, row: PathCredential, idem: IdempotencyDep) -> AiCredentialDeletedOut:
    async def make() -> AiCredentialDeletedOut:
        return AiCredentialDeletedOut(id=str(await service.delete_row(ctx, row)))

    return await idem.once(make, {})


@credentials.post("/{credential_id}/test", response_model=AiCredentialTestOut, responses=errors(404, 409))
async def test_credential(ctx: CtxDep, row: PathCredential, idem: IdempotencyDep) -> AiCredentialTestOut:
    """Asks the endpoint for its model list with the stored key (no tokens spent); `ok: false` and
    `error` say why when it refuses the key or cannot be reached."""

    async def make() -> AiCredentialTestOut:
        return AiCredentialTestOut.of(await service.check_row(ctx, row))

    return await idem.once(make, {})


@models.get("", response_model=AiModelPage, responses=errors(400, 404, 409, 429, 502))
async def list_models(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    provider: ModelProvider | None = None,
    status: ModelStatus | None = None,
    managed: bool | None = None,
    credential_id: Annotated[
        str | None, Query(alias="credentialId", max_length=64, description="Only this saved credential's models")
    ] = None,
    order: OrderQuery = "desc",
) -> AiModelPage:
    """The models the account's enabled saved credentials offer, asked of their endpoints now (or of
    one credential's, enabled or not, with `credentialId`). An endpoint that is down is 502
    `ai.gateway_unavailable`, one that refuses its key 502 `ai_credential.verification_failed`."""
    if managed or status not in (None, "supported"):
        return AiModelPage(data=[], has_more=False)  # no managed models here; endpoints do not rank theirs
    credential = await service.get(ctx, p, credential_id) if credential_id is not None else None
    wanted = stored_provider(provider) if provider else None
    if credential is not None and wanted is not None and credential.provider != wanted:
        return AiModelPage(data=[], has_more=False)
    found = await catalog.offered(ctx, p, provider=wanted, credential=credential)
    items, cursor = catalog.page(found, page, newest_first=order == "desc")
    return AiModelPage(data=[AiModelOut.of(m) for m in items], has_more=cursor is not None, next_cursor=cursor)
