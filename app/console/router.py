"""The web console (`/`, assets under `/console/`): static files shipped in the package, no CDN, no build
step. The console signs in with an API key kept in the browser's session storage and calls only the
public API with it, so it shows nothing a user's own tooling could not."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"

# The key lives in session storage, so a script injected into the console could use it: scripts come
# from this origin only (no inline script, no eval), and nothing else may frame the console. Frames of
# our own (the live and replay pages) and blob: media (replays) are allowed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def console() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers=HEADERS)


class ConsoleAssets(StaticFiles):
    """The console's scripts, styles and images, with the console's headers."""

    def file_response(self, full_path, stat_result, scope: Scope, status_code: int = 200):
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(HEADERS)
        return response


def assets() -> ConsoleAssets:
    return ConsoleAssets(directory=STATIC)
