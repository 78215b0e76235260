"""Liveness and readiness probes for load balancers and container health checks."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.api.common import JSONResponse
from service.errors import RETRY_AFTER_S
from service.store import uow


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready means able to take a write: `SELECT 1` passes on a full or read-only disk."""
    if await run_in_threadpool(uow.can_write):
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {
            "status": "unavailable",
            "message": "Database cannot take a write",
            "error": "database_unavailable",
        },
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_S},
    )


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
