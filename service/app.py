"""The ASGI application: routes, middleware, error handlers, and what runs at start-up."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from service import audit, logs, metrics, sweeper
from service.api import (
    admin,
    admin_views,
    console,
    deadlines,
    health,
    openapi,
    prometheus,
    prosody,
    video_calls,
    webhooks,
)
from service.api.common import app_error, http_error
from service.api.middleware import BodyLimit, RequestLog
from service.api.throttle import KeyThrottle
from service.auth import Authenticator, build_authenticator
from service.config import Settings, load_settings
from service.errors import AppError
from service.store import db
from service.webhooks import outbox, sender

log = logging.getLogger("service.app")

# Python's default is 5 ms; see lifespan.
GIL_SWITCH_INTERVAL_S = 0.001


def create_app(settings: Settings, authenticator: Authenticator | None = None) -> Starlette:
    db.bind(db.make_database(settings.database_url, settings.db_pool_size))
    logs.register_secrets(
        settings.jitsi_app_secret,
        settings.dev_auth_secret,
        settings.admin_api_key,
        settings.event_sync_token,
        settings.metrics_token,
        settings.audit_signing_key,
        *settings.prosody_events_secrets,
        *settings.webhooks.secrets,
    )
    outbox.configure(settings.webhooks.enabled)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # One worker thread per pooled connection: more threads would only queue on the pool.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.db_pool_size
        # A thread applying a big snapshot keeps the GIL for up to the switch interval each
        # time another thread asks for it; a token request asks a dozen times, so at the
        # default 5 ms it waited up to 50 ms behind the snapshot (docs/benchmarks.md).
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        # Everything alive now (modules, settings, compiled queries) lives as long as the
        # process: out of the collector's sight, a full collection no longer walks it. One
        # walked it with the objects of a big snapshot and paused every thread for about
        # 40 ms (the 5,000-room snapshot's worst token request: 58 ms, 17 ms after).
        gc.freeze()
        if not settings.server_tracks_presence:
            # Said at every start: these records are only as true as the browsers that wrote them.
            log.warning(
                "presence source: clients (PRESENCE_SOURCE=clients%s): calls are decided by "
                "browsers' reports and marked verification=client_reported",
                "" if settings.presence_source_explicit else ", no Prosody receiver configured",
            )
        async with anyio.create_task_group() as tasks:
            if settings.sweep_interval > 0:
                tasks.start_soon(sweeper.run_forever, settings)
            if settings.webhooks.enabled:
                tasks.start_soon(sender.run_forever, settings.webhooks)
            if settings.audit_signing_key and settings.audit_checkpoint_interval > 0:
                tasks.start_soon(audit.run_forever, settings)
            yield
            tasks.cancel_scope.cancel()
        db.current().close_all()  # type: ignore[attr-defined]

    middleware = [Middleware(RequestLog)]
    if settings.metrics_token:
        middleware.insert(0, Middleware(metrics.RequestMetrics))
    if settings.cors_origins or settings.cors_origin_regex:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_origin_regex=settings.cors_origin_regex or None,
                allow_methods=["GET", "POST", "PATCH", "PUT", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        )
    middleware.append(
        Middleware(
            BodyLimit,
            overrides={"/api/prosody/events": prosody.MAX_EVENT_BODY},
            # The receivers judge a request's headers before a byte of its body is read.
            gates=(
                ("POST", "/api/prosody/events", prosody.admit_v1),
                ("POST", "/api/event-sync/events/", prosody.admit_event_sync),
            ),
            read_timeout=settings.body_read_timeout,
        )
    )
    # The headers' deadline, in uvicorn's protocol of this worker (service/api/deadlines.py).
    deadlines.configure(settings.body_read_timeout)

    app = Starlette(
        routes=[
            *health.routes,
            *video_calls.routes,
            *admin.routes,
            *webhooks.routes,
            *admin_views.routes,
            *console.routes,
            *prosody.routes,
            *openapi.routes,
            *prometheus.routes,
        ],
        middleware=middleware,
        exception_handlers={
            AppError: app_error,
            HTTPException: http_error,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    # One per app (per worker): wrong admin keys counted per client address.
    app.state.admin_key_throttle = KeyThrottle()
    # /readyz's write probe, at most once a second (service/api/health.py).
    app.state.readiness = health.Readiness()
    app.state.authenticator = authenticator or build_authenticator(settings)
    return app


def factory() -> Starlette:
    """Entry point for `uvicorn --factory` (each worker process builds its own app)."""
    settings = load_settings()
    logs.configure(settings.log_level)
    return create_app(settings)
