"""An HTTP request made as the browser would make it: its cookies, its proxy, its network policy.

The logic is app/browsing/fetch.py; these are the current generation's routes (new paths)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.responses import StreamingResponse

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.browsing import fetch
from app.core.schemas import errors
from app.current.fetch_schemas import BrowserFetchIn, BrowserFetchResultOut, BrowserFetchStreamIn, result_out
from app.current.paths import PathBrowser

router = APIRouter(prefix="/v1/browsers/{browser_id}", tags=["browser fetch"])
routers = (router,)

_UPSTREAM = {
    502: {"description": "The request failed upstream or was refused by the network policy (`browser.fetch_failed`)"},
    504: {"description": "No answer within timeoutMs (`browser.fetch_timeout`)"},
}


@router.post("/fetch", response_model=BrowserFetchResultOut, responses={**errors(400, 404, 409), **_UPSTREAM})
async def fetch_once(
    ctx: CtxDep, p: PrincipalDep, runtime: PathBrowser, body: BrowserFetchIn, idem: IdempotencyDep
) -> Any:
    """Send the request as the browser would; the body comes back base64, up to maxBytes."""
    spec = body.spec(body.max_bytes or fetch.DEFAULT_MAX_BYTES)

    async def make() -> BrowserFetchResultOut:
        return result_out(await fetch.fetch(ctx, runtime, spec, actor=str(p.key_id)))

    return await idem.once(make, {**body.model_dump(mode="json"), "browser": str(runtime.id)})


# Characters of a URL kept as they are in BCTRL-Fetch-Url (others, such as non-ASCII ones, percent-encoded).
_URL_SAFE = ":/?#[]@!$&'()*+,;=%-._~"


@router.post(
    "/fetch/stream",
    response_class=StreamingResponse,
    responses={
        **errors(400, 404, 409),
        **_UPSTREAM,
        200: {
            "description": "The upstream body as it arrives; BCTRL-Fetch-Status and BCTRL-Fetch-Headers (JSON) "
            "carry its status and headers",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
    },
)
async def fetch_stream(
    ctx: CtxDep, p: PrincipalDep, runtime: PathBrowser, body: BrowserFetchStreamIn
) -> StreamingResponse:
    """Send the request as the browser would and stream the answer's body back (any size)."""
    got = await fetch.open_stream(ctx, runtime, body.spec(), actor=str(p.key_id))
    headers = {
        "BCTRL-Fetch-Status": str(got.status),
        "BCTRL-Fetch-Status-Text": got.status_text.encode("latin-1", "replace").decode("latin-1"),
        "BCTRL-Fetch-Url": quote(got.url, safe=_URL_SAFE),
        "BCTRL-Fetch-Headers": json.dumps(got.headers, ensure_ascii=True, separators=(",", ":")),
        "Cache-Control": "no-store",
        # Another site's answer under this API's origin: never sniffed or run as a page of it.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    media = got.headers.get("content-type", "application/octet-stream")
    return StreamingResponse(got.chunks, media_type=media, headers=headers)
