"""Liveness and readiness probes for load balancers and container health checks."""

from __future__ import annotations

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.api.common import JSONResponse
from service.clock import now_ms
from service.errors import RETRY_AFTER_S
from service.store import uow

# The probe commits a write; a flood of /readyz must not become a flood of commits.
PROBE_INTERVAL_MS = 1_000


class Readiness:
    """The last write probe's answer, reused for PROBE_INTERVAL_MS; one probe at a time."""

    def __init__(self) -> None:
        self._lock = anyio.Lock()
        self._at: int | None = None
        self._ready = False

    async def ready(self) -> bool:
        async with self._lock:
            # Callers that queued behind a probe take its answer: still within the interval.
            at = now_ms()
            if self._at is None or not 0 <= at - self._at < PROBE_INTERVAL_MS:
                self._ready = await run_in_threadpool(uow.can_write)
                self._at = now_ms()
            return self._ready


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready means able to take a write: `SELECT 1` passes on a full or read-only disk."""
    readiness: Readiness = request.app.state.readiness
    if await readiness.ready():
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
