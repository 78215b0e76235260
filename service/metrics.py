"""Prometheus metrics: what the service counts, the middleware that times requests, and the
text exposition that GET /metrics serves.

Several uvicorn workers of one `videocalls serve` each count their own requests. For a scrape
of any worker to report all of them, prometheus_client's multiprocess mode keeps every
sample in files under PROMETHEUS_MULTIPROC_DIR, which `serve` creates (empty) and exports
before anything imports prometheus_client (cli.py). A process started
any other way (tests, `uvicorn service.app:factory`) counts in memory, for itself only.

Labels are bounded: route templates (`/api/video-calls/{ref}`), never paths or ids.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Requests no route matched (scanners, typos) share one label instead of one per path.
UNMATCHED_ROUTE = "unmatched"

# `_created` samples exist only in single-process mode; without them both modes export the same.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Metrics register here, not in prometheus_client's global registry: nothing else is exported.
_REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "videocalls_http_requests",
    "HTTP requests answered, by route template, method and status code",
    ["route", "method", "status"],
    registry=_REGISTRY,
)
HTTP_DURATION = Histogram(
    "videocalls_http_request_duration_seconds",
    "Time from receiving a request to the end of its response, by route template",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=_REGISTRY,
)
EVENTS_RECEIVED = Counter(
    "videocalls_events_received",
    "Prosody events received, by receiver (v1, event_sync) and result "
    "(new, duplicate, rejected: bad signature or token or a peer not allowed, invalid: not a "
    "valid event, stale: an event_sync time beyond EVENT_SYNC_MAX_AGE)",
    ["source", "result"],
    registry=_REGISTRY,
)
EVENT_LAG = Histogram(
    "videocalls_event_lag_seconds",
    "Arrival time minus the event's occurred_at, for newly stored events (clamped at 0)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
    registry=_REGISTRY,
)
SWEEPS = Counter(
    "videocalls_sweeps",
    "Sweeper runs inside the service, by result (ran, skipped: another replica "
    "holds the lock, failed)",
    ["result"],
    registry=_REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "videocalls_webhook_deliveries",
    "Outgoing webhook delivery attempts, by result",
    ["result"],
    registry=_REGISTRY,
)


def event_received(source: str, result: str, lag_ms: int | None = None) -> None:
    EVENTS_RECEIVED.labels(source, result).inc()
    if lag_ms is not None:
        EVENT_LAG.observe(max(0, lag_ms) / 1000)


def sweep_finished(result: str) -> None:
    SWEEPS.labels(result).inc()


def webhook_delivered(result: str) -> None:
    """The hook point for outgoing webhooks (success, failure, ...): one call per attempt."""
    WEBHOOK_DELIVERIES.labels(result).inc()


# --- exposition -----------------------------------------------------------------------------


class CallsToday(Collector):
    """`videocalls_calls{status}`: today's calls per status, read from the database at scrape
    time (a gauge kept in each worker would count only what that worker changed)."""

    def __init__(self, count_by_status: Callable[[], dict[str, int]]) -> None:
        self.count_by_status = count_by_status

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "videocalls_calls",
            "Calls of today's appointments (appointment date = today in UTC), by status",
            labels=["status"],
        )
        for status, count in sorted(self.count_by_status().items()):
            family.add_metric([status], count)
        yield family


def exposition(count_by_status: Callable[[], dict[str, int]]) -> bytes:
    """Every metric in Prometheus' text format. Blocking: reads files and the database."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry = _REGISTRY
    output = generate_latest(registry)
    gauge = CollectorRegistry()
    gauge.register(CallsToday(count_by_status))
    return output + generate_latest(gauge)


# --- the request middleware ------------------------------------------------------------------


class RequestMetrics:
    """Counts and times every HTTP request under its route template.

    Outermost, so it sees the status clients get (413s from BodyLimit and 500s from the error
    boundary included). Starlette's router records the matched route in the scope.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            label = route.path if isinstance(route, BaseRoute) and hasattr(route, "path") else None
            template = label if isinstance(label, str) else UNMATCHED_ROUTE
            HTTP_REQUESTS.labels(template, scope.get("method", ""), str(status)).inc()
            HTTP_DURATION.labels(template).observe(time.perf_counter() - started)
