"""GET /metrics: Prometheus' text format, only with `Authorization: Bearer <METRICS_TOKEN>`."""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import clock, metrics
from service.api.common import in_thread, settings_of
from service.errors import NotFound, Unauthorized
from service.store import operations, uow


def _require_token(request: Request) -> None:
    token = settings_of(request).metrics_token
    if not token:
        raise NotFound("Metrics are disabled: set METRICS_TOKEN", "metrics_disabled")
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("Missing metrics token", "missing_token")
    # Prometheus' scrape config knows 401 only: a wrong token is 401 as well, never 403.
    if not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise Unauthorized("Invalid metrics token", "invalid_token")


def _today_counts() -> dict[str, int]:
    day = clock.today_utc().isoformat()
    return uow.run(lambda: operations.calls_by_status(day))


async def metrics_text(request: Request) -> Response:
    _require_token(request)
    body = await in_thread(lambda: metrics.exposition(_today_counts))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics_text, methods=["GET"])]
