"""Swagger UI and ReDoc served from the app itself: pinned assets, no CDN, no inline script."""

from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

ASSETS_URL = "/docs/static"
# The Swagger UI and ReDoc bundles come from the pinned fastapi-offline package (see README);
# this folder holds only the init scripts, kept as files so the CSP needs no 'unsafe-inline'.
_OWN_ASSETS = Path(__file__).parent / "docs_assets"

_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - Swagger UI</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js" data-openapi-url="{openapi}"></script>
</body>
</html>
"""

_REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - ReDoc</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
</head>
<body>
<redoc spec-url="{openapi}"></redoc>
<script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""


class _Assets(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        # Revalidated by ETag, so an upgraded package is picked up on the next load.
        response.headers["cache-control"] = "no-cache"
        return response


def install_docs(app: FastAPI) -> None:
    """Adds /docs and /redoc; the app must be built with docs_url=None and redoc_url=None."""
    app.mount(
        ASSETS_URL,
        _Assets(directory=_OWN_ASSETS, packages=[("fastapi_offline", "static")]),
        name="docs-assets",
    )

    def page(template: str, request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return HTMLResponse(
            template.format(
                title=escape(app.title),
                assets=escape(f"{root}{ASSETS_URL}"),
                openapi=escape(f"{root}{app.openapi_url}"),
            )
        )

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return page(_SWAGGER_PAGE, request)

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return page(_REDOC_PAGE, request)
