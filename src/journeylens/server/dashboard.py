"""The dashboard: a static page at ``GET /`` that queries the API with a read key (no CDN, no build step).

The page, its CSS and JS are package data in ``journeylens/server/static``; Plotly's JS comes from the
installed plotly package (``/static/plotly.min.js``). Loading the page needs no key: it asks for a read
key, keeps it in ``sessionStorage`` and sends it as ``Authorization: Bearer``. Everything that comes from
the data is put in the page with ``textContent``; the journey map is a sandboxed ``iframe`` (no scripts).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from journeylens.server.app import ApiError

#: the files served from the package's ``static`` folder, with their media types
STATIC = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}
_PAGE_HEADERS = {
    **_HEADERS,
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-src 'self' data: about:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


def static_text(name: str) -> str:
    return resources.files("journeylens.server").joinpath("static", name).read_text(encoding="utf-8")


@cache
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def router() -> APIRouter:
    r = APIRouter(tags=["dashboard"], include_in_schema=False)

    @r.get("/", response_class=HTMLResponse)
    async def index() -> Response:
        return HTMLResponse(static_text("index.html"), headers=_PAGE_HEADERS)

    @r.get("/static/plotly.min.js")
    async def plotly() -> Response:
        return Response(
            plotly_js(),
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    @r.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise ApiError(404, "not_found", f"no static file {name!r}")
        return Response(static_text(name), media_type=STATIC[name], headers=_HEADERS)

    return r
