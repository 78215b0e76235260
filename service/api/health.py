"""Liveness and readiness probes for load balancers and container health checks."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.store import db


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    if await run_in_threadpool(db.ping):
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {
            "status": "unavailable",
            "message": "Database is unreachable",
            "error": "database_unavailable",
        },
        status_code=503,
    )


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
