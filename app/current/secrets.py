"""`/v1/secrets`: the vault of `login` and `value` secrets at paths (`prod/github/bot`).

`{secret}` is a secret's id or its path. The official client percent-encodes it as one segment
(`prod%2Fgithub%2Fbot`); these routes match on the path as received (`SecretRoute`), so an encoded `/`
stays inside the segment and `…/versions` or `…/reveal` after it is never mistaken for part of a path.
A path sent with plain slashes (`/v1/secrets/prod/github/bot`) works too, except that a path whose last
segment is `versions` or `reveal` must then be encoded.

Values are write-only: only `reveal` answers them, for people (API keys of the account); a view token
gets 403 `secrets.reveal_forbidden`. `reveal` ignores `Idempotency-Key` (a replay would have to keep the
revealed values at rest)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote, unquote

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import Match

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep, key_principal
from app.accounts.service import Principal
from app.core.paging import PageParams, page_params
from app.core.schemas import IdempotencyKey, errors
from app.current.schemas import Order
from app.current.secret_schemas import (
    SecretCreate,
    SecretDeletedOut,
    SecretOut,
    SecretPage,
    SecretRevealIn,
    SecretRevealOut,
    SecretType,
    SecretUpdate,
    SecretVersionOut,
    SecretVersionPage,
)
from app.vault import checks
from app.vault import service as vault
from app.vault.models import VaultSecret
from app.views import service as views
from app.views import tokens as view_tokens

# Characters of a path segment left as they are when a segment is matched (RFC 3986 pchar).
SAFE = "!$&'()*+,;=:@-._~"
SUB_RESOURCES = ("versions", "reveal")
_ETAG = r'(?:W/)?"?[0-9]{1,9}"?'
IF_MATCH_PATTERN = rf"^(?:\*|{_ETAG}(?: *, *{_ETAG})*)$"


class SecretRoute(APIRoute):
    """Matches on the path as the client sent it: a percent-encoded `/` (`%2F`) stays inside its segment
    (the path parameter carries it encoded; `ref()` decodes it)."""

    def matches(self, scope):
        raw = scope.get("raw_path")
        if raw:
            text = raw.decode("latin-1")
            decoded, path = unquote(text), scope.get("path", "")
            if path.endswith(decoded):  # what precedes it (a root path) is kept as it is
                segments = [quote(unquote(seg), safe=SAFE) for seg in text.split("/")]
                # A plain-slash path ending in a sub-resource's word is that sub-resource's, never a secret's.
                if self.path.endswith("{secret:path}") and segments[-1] in SUB_RESOURCES and len(segments) > 4:
                    return Match.NONE, {}
                scope = {**scope, "path": path[: len(path) - len(decoded)] + "/".join(segments)}
        return super().matches(scope)


router = APIRouter(prefix="/v1/secrets", tags=["secrets"], route_class=SecretRoute)
routers = (router,)

Page = Annotated[PageParams, Depends(page_params)]
OrderQuery = Annotated[Order, Query(description="Order by createdAt and ID. Defaults to desc.")]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=200,
        pattern=IF_MATCH_PATTERN,
        description='Apply the write only if the current version (the ETag) is this one, for example `"3"`; 412 '
        "`secrets.version_mismatch` otherwise",
    ),
]
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer bctrl_...`")


def ref(secret: str) -> str:
    return unquote(secret)


def etag(response: Response, row: VaultSecret) -> None:
    response.headers["ETag"] = f'"{row.version}"'


async def path_secret(ctx: CtxDep, p: PrincipalDep, secret: str) -> VaultSecret:
    return await vault.get(ctx, p, ref(secret))


PathSecret = Annotated[VaultSecret, Depends(path_secret)]


async def person(
    request: Request, ctx: CtxDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """Who may reveal: an API key of the account. A view token (valid) is 403 `secrets.reveal_forbidden`
    (a forged or expired one 401, as everywhere)."""
    raw = credentials.credentials if credentials else None
    if view_tokens.looks_like(raw):
        await views.authenticate(ctx, raw)
        raise vault.Forbidden("A view token may not reveal secrets: only people's API keys may")
    return await key_principal(request, ctx, raw)


async def revealed_secret(ctx: CtxDep, p: Annotated[Principal, Depends(person)], secret: str) -> VaultSecret:
    return await vault.get(ctx, p, ref(secret))


@router.get("", response_model=SecretPage, responses=errors(400, 403))
async def list_secrets(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    prefix: Annotated[
        str | None,
        Query(
            # Published, and checked by the vault (400 secrets.prefix_invalid, naming the rule broken).
            json_schema_extra={"maxLength": checks.MAX_PATH, "pattern": checks.PREFIX_PATTERN},
            description="Only paths starting with this prefix (whole segments, then perhaps the start of one).",
        ),
    ] = None,
    delimiter: Annotated[
        Literal["/"] | None,
        Query(description="`/`: group paths below the next `/` after the prefix into `folders`."),
    ] = None,
    type: Annotated[SecretType | None, Query()] = None,
    order: OrderQuery = "desc",
) -> SecretPage:
    """Secrets by path (never their values). `prefix` narrows to paths starting with it; `delimiter=/`
    groups deeper paths into `folders` (each ending in `/`), like S3; folders count toward `limit`."""
    listing = await vault.list_secrets(
        ctx, p.account_id, page, prefix=prefix, delimiter=delimiter, kind=type, newest_first=order == "desc"
    )
    return SecretPage(
        data=[SecretOut.of(r) for r in listing.rows],
        folders=listing.folders,
        has_more=listing.cursor is not None,
        next_cursor=listing.cursor,
    )


@router.post("", status_code=201, response_model=SecretOut, responses=errors(400, 403, 409, 429))
async def create_secret(
    ctx: CtxDep, p: PrincipalDep, body: SecretCreate, idem: IdempotencyDep, response: Response
) -> SecretOut:
    """A secret at a new path (409 `secrets.conflict` if the account has one there). A `login` holds
    username, password, TOTP seed and the origins it may be filled into; a `value` one value. Values
    are sealed under the server key and never answered but by `reveal`."""

    async def make() -> SecretOut:
        row = await vault.create(ctx, p, body.spec())
        etag(response, row)
        return SecretOut.of(row)

    return await idem.once(make, body.model_dump(mode="json"))


@router.get("/{secret:path}/versions", response_model=SecretVersionPage, responses=errors(400, 403, 404))
async def list_versions(ctx: CtxDep, row: PathSecret, page: Page, order: OrderQuery = "desc") -> SecretVersionPage:
    """Version metadata (which fields each version set, who wrote it); never values or ciphertext."""
    rows, cursor = await vault.list_versions(ctx, row, page, newest_first=order == "desc")
    return SecretVersionPage(
        data=[SecretVersionOut.of(v) for v in rows], has_more=cursor is not None, next_cursor=cursor
    )


@router.post("/{secret:path}/reveal", response_model=SecretRevealOut, responses=errors(400, 403, 404, 429))
async def reveal_secret(
    ctx: CtxDep,
    p: Annotated[Principal, Depends(person)],
    row: Annotated[VaultSecret, Depends(revealed_secret)],
    body: Annotated[SecretRevealIn | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> SecretRevealOut:
    """The values of the current version (or of `version`). People only: API keys of the account; a view
    token is 403 `secrets.reveal_forbidden` (tasks never reach this route: they fill logins on the server).
    Every reveal is audited (who, which version, which fields; never a value)."""
    version = body.version if body is not None else None
    return SecretRevealOut.of(await vault.reveal(ctx, row, vault.person(p), version))


@router.get("/{secret:path}", response_model=SecretOut, responses=errors(403, 404))
async def get_secret(row: PathSecret, response: Response) -> SecretOut:
    """The secret's metadata and which fields are set (`hasPassword`, ...); never a value."""
    etag(response, row)
    return SecretOut.of(row)


@router.patch("/{secret:path}", response_model=SecretOut, responses=errors(400, 403, 404, 409, 412, 429))
async def update_secret(
    ctx: CtxDep,
    p: PrincipalDep,
    row: PathSecret,
    body: SecretUpdate,
    idem: IdempotencyDep,
    response: Response,
    if_match: IfMatch = None,
) -> SecretOut:
    """Change some fields (`null` clears one): a new version. `fromVersion` alone restores the values of
        that version (label and origins stay). `If-Match: "N"` applies it only at version N (412 otherwise). A field
    that does not fit the secret's type (a `value` on a login, a login's last field cleared) is 409
    `secrets.conflict`."""

    async def make() -> SecretOut:
        updated = await vault.update(
            ctx, row, body.changes(), vault.person(p), from_version=body.from_version, if_match=if_match
        )
        etag(response, updated)
        return SecretOut.of(updated)

    return await idem.once(make, {"body": body.model_dump(mode="json", exclude_unset=True), "ifMatch": if_match})


@router.delete("/{secret:path}", response_model=SecretDeletedOut, responses=errors(403, 404, 409, 412, 429))
async def delete_secret(
    ctx: CtxDep, p: PrincipalDep, row: PathSecret, idem: IdempotencyDep, if_match: IfMatch = None
) -> SecretDeletedOut:
    """The secret and all its versions; the audit trail is kept. Supports `If-Match`."""

    async def make() -> SecretDeletedOut:
        return SecretDeletedOut.of(await vault.delete(ctx, row, vault.person(p), if_match=if_match))

    return await idem.once(make, {"ifMatch": if_match})
