"""The API reference at /docs, served from this origin: Swagger UI's dist files ship in a pinned package
(fastapi-swagger, pyproject.toml; only its files are used) and our page loads nothing else, so the
reference works offline and behind a firewall. FastAPI's own /docs and /redoc load Swagger UI from a CDN
and start it with an inline script; they are replaced (/redoc now leads here).

The page has a strict CSP: scripts and styles from this origin only (no inline script, no eval), requests
to this origin only (the description and "Try it out"), nothing may frame it."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'"
)
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

# Our start-up script (an inline one would need 'unsafe-inline'): the description's URL comes from the page.
INIT_JS = """\
"use strict";
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  deepLinking: true,
  filter: true,
  displayRequestDuration: true,
  docExpansion: "none",
  defaultModelsExpandDepth: 0,
  validatorUrl: null,
  persistAuthorization: false,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""

PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} API reference</title>
<link rel="icon" type="image/png" href="{root}/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="{root}/docs/assets/swagger-ui.css">
</head>
<body>
<noscript>The API reference needs JavaScript. The description itself is <a href="{root}/openapi.json">/openapi.json</a>.</noscript>
<div id="swagger-ui" data-openapi-url="{root}{openapi}"></div>
<script src="{root}/docs/assets/swagger-ui-bundle.js"></script>
<script src="{root}/docs/assets/docs.js"></script>
</body>
</html>
"""

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


@cache
def _asset(name: str) -> bytes:
    if name == "docs.js":
        return INIT_JS.encode()
    return resources.files("fastapi_swagger.resources").joinpath(name).read_bytes()


def install(app: FastAPI) -> None:
    """Replace FastAPI's CDN-loading /docs and /redoc with the page served from here."""
    replaced = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None}
    app.router.routes[:] = [route for route in app.router.routes if getattr(route, "path", None) not in replaced]
    openapi_url = app.openapi_url or "/openapi.json"

    async def page(request: Request) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")
        html = PAGE.format(title=app.title, root=root, openapi=openapi_url)
        return HTMLResponse(html, headers={**HEADERS, "Cache-Control": "no-cache"})

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        media_type = "text/javascript; charset=utf-8" if name == "docs.js" else ASSETS.get(name)
        if media_type is None:
            raise HTTPException(404)
        # The files change only with the pinned package, so an hour of caching costs nothing.
        return Response(
            _asset(name), media_type=media_type, headers={**HEADERS, "Cache-Control": "public, max-age=3600"}
        )

    async def redoc(request: Request) -> Response:
        return RedirectResponse(request.scope.get("root_path", "").rstrip("/") + "/docs")

    app.add_route("/docs", page, methods=["GET"], include_in_schema=False)
    app.add_route("/docs/assets/{name}", asset, methods=["GET"], include_in_schema=False)
    app.add_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
