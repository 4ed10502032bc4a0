"""The browser apps' HTTP plumbing: where their files are, the pages' security headers, and
the static routes that serve the app's own code and the pinned front-end packages.

Nothing is built and nothing comes from a CDN: `web/src/` holds plain ES modules, CSS and the
message catalogue; `web/node_modules/` holds the npm packages `make install` puts there at the
versions of `web/package-lock.json`. Only the `dist/` folders of the packages the pages use are
served, each under `/static/vendor/<name>/`.

The Content-Security-Policy allows scripts, styles, fonts and connections from the app's own
origin only, images also from the configured tile server (and `data:` images, which Leaflet
uses to blank a cancelled tile); no inline script or style element, no plugin, no framing, no
`<base>`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from litestar import Response
from litestar.datastructures import CacheControlHeader
from litestar.router import Router
from litestar.static_files import create_static_files_router

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
SRC_DIR = WEB_DIR / "src"
NODE_MODULES = WEB_DIR / "node_modules"

# URL name -> the package's folder of browser files (as its package.json publishes them).
VENDOR: Mapping[str, str] = {
    "leaflet": "leaflet/dist",
    "leaflet-geoman": "@geoman-io/leaflet-geoman-free/dist",
    "jsqr": "jsqr/dist",
    "uplot": "uplot/dist",
}
PAGES: Mapping[str, str] = {"console": "console.html", "till": "till.html"}
LANGUAGES = ("en", "fr")

SECURITY_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=(), payment=()",
}


def tile_origin(tile_url: str) -> str | None:
    """The CSP source of a tile URL template: `https://{s}.tile.example.org/{z}/{x}/{y}.png`
    gives `https://*.tile.example.org`; no URL (no tiles at all) gives None."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"LOYALTY_CONSOLE_TILE_URL must be an http(s) URL, got {tile_url!r}")
    host = re.sub(r"\{[a-z]+\}", "*", parts.netloc)
    return f"{parts.scheme}://{host}"


def content_security_policy(tile_url: str) -> str:
    # data: images only (not an origin): Leaflet blanks a cancelled tile with a data: GIF.
    images = " ".join(x for x in ("'self'", "data:", tile_origin(tile_url)) if x)
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src {images}",
        "connect-src 'self'",
        "font-src 'self'",
        "media-src 'self' blob:",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def assets_missing() -> list[str]:
    """The front-end folders that are not installed (empty when `make install` has run)."""
    return [f"web/node_modules/{d}" for d in VENDOR.values() if not (NODE_MODULES / d).is_dir()]


def pick_language(accept_language: str) -> str:
    """The first of LANGUAGES that `Accept-Language` accepts, by its q-values (English else)."""
    best: tuple[float, int, str] | None = None
    for i, item in enumerate(accept_language.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        base = tag.strip().lower()[:2]
        if base in LANGUAGES and q > 0 and (best is None or (q, -i) > (best[0], best[1])):
            best = (q, -i, base)
    return best[2] if best else "en"


class PageTemplates:
    """The two pages' HTML, read once; values are filled in HTML-escaped."""

    def __init__(self, src: Path = WEB_DIR) -> None:
        self._pages = {name: (src / file).read_text(encoding="utf-8")
                       for name, file in PAGES.items()}

    def render(self, page: str, values: Mapping[str, str]) -> str:
        def fill(match: re.Match[str]) -> str:
            return html.escape(values.get(match.group(1), ""), quote=True)

        return re.sub(r"\{\{(\w+)\}\}", fill, self._pages[page])


def page_response(body: str, csp: str, *, status: int = 200) -> Response[str]:
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": csp,
               "Cache-Control": "no-store"}
    return Response(body, status_code=status, media_type="text/html; charset=utf-8",
                    headers=headers)


def static_routers(csp: str) -> list[Router]:
    """`/static/app/` (our code, revalidated on each load) and `/static/vendor/<name>/` (the
    pinned packages), public, with the same security headers as the pages."""
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": csp}

    async def add_headers(response: Response[object]) -> Response[object]:
        response.headers.update(headers)
        return response

    # Files, not API operations: kept out of the OpenAPI document.
    opt = {"exclude_from_auth": True}
    routers = [create_static_files_router(
        "/static/app", directories=[SRC_DIR], name="web-app", opt=opt, include_in_schema=False,
        after_request=add_headers, cache_control=CacheControlHeader(no_cache=True))]
    for name, folder in VENDOR.items():
        if (NODE_MODULES / folder).is_dir():
            routers.append(create_static_files_router(
                f"/static/vendor/{name}", directories=[NODE_MODULES / folder],
                name=f"web-vendor-{name}", opt=opt, include_in_schema=False,
                after_request=add_headers,
                cache_control=CacheControlHeader(max_age=3600)))
    return routers
