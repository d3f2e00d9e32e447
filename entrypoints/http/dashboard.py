"""The trader's dashboard: one page at `/`, its scripts and styles under `/static/`.

Plain HTML, ES modules and CSS shipped as package data (entrypoints/http/static/), no build
step and nothing loaded from anywhere but this origin. The page holds no secret: it asks the
trader to sign in and talks to the same API as any client (/api/v1, the /api/v1/stream
WebSocket) with the trader's own bearer token. Its answers carry a strict
Content-Security-Policy (guards.py, `dashboard_csp`): scripts, styles and connections from this
origin only, no inline script or style.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated

from litestar import Router, get
from litestar.params import PathParameter
from litestar.response import Response

from application.errors import NotFound

# What the package ships, and as what: anything else under /static/ is a 404.
_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
STATIC_PREFIX = "/static/"


@cache
def _assets() -> dict[str, bytes]:
    """Every file of entrypoints/http/static, read once: name -> bytes."""
    folder = resources.files("entrypoints.http") / "static"
    found: dict[str, bytes] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            found[entry.name] = entry.read_bytes()
    return found


def _asset(name: str) -> Response[bytes]:
    body = _assets().get(name)
    if body is None:
        raise NotFound(f"no such file: {STATIC_PREFIX}{name}")
    return Response(body, media_type=_TYPES["." + name.rpartition(".")[2]])


@get("/", include_in_schema=False)
async def page() -> Response[bytes]:
    return _asset("index.html")


@get("/static/{name:str}", include_in_schema=False)
async def static(
    name: Annotated[str, PathParameter(pattern=r"^[a-z0-9][a-z0-9_-]{0,60}\.(js|css|svg)$")],
) -> Response[bytes]:
    return _asset(name)


def dashboard_router() -> Router:
    return Router("", route_handlers=[page, static])
