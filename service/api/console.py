"""GET /console: the operator console, three static files from the package, no dependencies.

The page holds no data: its script asks GET /api/admin/console/* with the admin key the
operator types (kept in the tab's sessionStorage). The Content-Security-Policy allows only
this origin's own script, style and API, so nothing else can run in it or be loaded by it.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.api import apidoc as doc

CSP: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The files are small and change with the service: always fresh, never stale after an upgrade.
    "Cache-Control": "no-cache",
}
_FILES: Final = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
# Read once at import: the package's files do not change while it runs.
_CONTENT: Final = {
    name: resources.files("service.console").joinpath(name).read_bytes() for name in _FILES
}


def _file(name: str) -> Response:
    return Response(_CONTENT[name], media_type=_FILES[name], headers=HEADERS)


async def page(request: Request) -> Response:
    return _file("index.html")


async def script(request: Request) -> Response:
    return _file("console.js")


async def stylesheet(request: Request) -> Response:
    return _file("console.css")


routes = [
    Route("/console", page, methods=["GET"]),
    Route("/console/console.js", script, methods=["GET"]),
    Route("/console/console.css", stylesheet, methods=["GET"]),
]


# --- the document's facts about these operations (service/api/openapi.py gathers them) ------


def _static(operation_id: str, summary: str, media: str) -> doc.JSON:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["console"],
            "responses": {
                "200": {"description": summary, "content": {media: {"schema": doc.string()}}},
            },
        }
    }


OPERATIONS: Final[doc.JSON] = {
    "/console": _static(
        "consolePage",
        "The operator console (sign in with the admin key; strict CSP, no external resources)",
        "text/html",
    ),
    "/console/console.js": _static("consoleScript", "The console's script", "text/javascript"),
    "/console/console.css": _static("consoleStyles", "The console's styles", "text/css"),
}
