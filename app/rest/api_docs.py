"""The interactive API docs, served whole by the gateway: Swagger UI at ``/docs``, its script,
style sheet and icon under ``/docs/static``.

SSO's networks are closed, so no page the gateway serves loads anything from the internet
(FastAPI's own pages take Swagger UI from a CDN). The assets come from the ``fastapi-offline``
package, a declared dependency that ships a current Swagger UI 5 build (``swagger-ui-bundle``'s
newest release holds Swagger UI 4, which cannot read the OpenAPI 3.1 document FastAPI writes);
only its files are used, not its FastAPI wrapper. Swagger UI's online validator is turned off:
it would send the document's address to swagger.io. A Content-Security-Policy lets the page
load only from the gateway, whatever a future Swagger UI tries.

No ReDoc: the ReDoc 2 build always shows Redocly's logo from its CDN.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

STATIC_URL = "/docs/static"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
# Swagger UI's start-up script is inline, and it styles and draws with inline styles and
# data: images; everything else comes from the gateway.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


def assets_dir() -> Path:
    """The directory of the packaged Swagger UI and ReDoc builds."""
    return Path(str(files("fastapi_offline") / "static"))


def add_api_docs(app: FastAPI) -> None:
    """Serve ``/docs`` from packaged assets (build ``app`` with ``docs_url=None,
    redoc_url=None`` so that FastAPI's CDN pages are not served)."""
    directory = assets_dir()
    missing = [name for name in ASSETS if not (directory / name).is_file()]
    if missing:
        raise RuntimeError(f"the API docs' assets are missing from {directory}: {missing}")
    app.mount(STATIC_URL, StaticFiles(directory=directory), name="docs-static")

    def url(request: Request, path: str) -> str:
        return f"{request.scope.get('root_path', '')}{path}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=url(request, str(app.openapi_url)),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=url(request, f"{STATIC_URL}/swagger-ui-bundle.js"),
            swagger_css_url=url(request, f"{STATIC_URL}/swagger-ui.css"),
            swagger_favicon_url=url(request, f"{STATIC_URL}/favicon.png"),
            oauth2_redirect_url=None,  # bearer tokens only: no OAuth2 flow to come back from
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = DOCS_POLICY
        return page
