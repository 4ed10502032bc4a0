"""The documentation page, `/schema`: Swagger UI from a pinned Python package
(`swagger-ui-bundle-v2`, the official swagger-ui-dist files), served by this app under
`/schema/assets/`, so the page works with no internet (Litestar's default plugins load their
viewer, fonts and favicon from CDNs). The OpenAPI document itself is Litestar's, with the
operations' examples added once (`api.examples`) when it is first served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from api.examples import with_examples

ASSETS = "/schema/assets"
ASSETS_DIR = Path(str(swagger_ui_path))
STYLE = ("<style>body { margin: 0; padding: 0 } "
         ".swagger-ui .info .title small.version-stamp { background: #3b4151 }</style>")


class OfflineSwagger(SwaggerRenderPlugin):
    """Swagger UI with every asset from `ASSETS` (no CDN) and the examples filled in."""

    def __init__(self) -> None:
        super().__init__(
            js_url=f"{ASSETS}/swagger-ui-bundle.js", css_url=f"{ASSETS}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
            style=STYLE, path="/swagger")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, with_examples(openapi_schema, request.app))


class ExampleJson(JsonRenderPlugin):
    """`/schema/openapi.json`, with the examples filled in."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, with_examples(openapi_schema, request.app))


def assets_router() -> Router:
    """The Swagger UI files, cached by browsers for a day (the package is pinned)."""
    return create_static_files_router(
        path=ASSETS, directories=[ASSETS_DIR], include_in_schema=False,
        opt={"exclude_from_auth": True}, name="docs-assets",
        cache_control=CacheControlHeader(max_age=86_400, public=True))
