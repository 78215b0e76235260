"""Receivers for Prosody's room events: the signed version-1 contract and stock event_sync.

Signatures are verified on the raw bytes before anything is parsed; a rejected request
stores nothing. Both receivers feed the same pipeline (service.tracking.ingest).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import metrics, tracking
from service.api.common import JSONResponse, in_thread, require_bearer_key, settings_of
from service.clock import now_ms
from service.domain.prosody import Event, RoomEvent
from service.errors import AppError, BadRequest, Forbidden, NotFound, Unauthorized
from service.fields import MAX_ID_CHARS
from service.receiver import admission
from service.receiver.parse import EVENT_SYNC_KINDS as EVENT_SYNC_KINDS
from service.receiver.parse import MAX_BODY_BYTES, InvalidEvent, parse_event_sync, parse_v1
from service.receiver.signing import SignatureError, check_headers, verify

log = logging.getLogger("service.receiver")

# Snapshots of a busy Prosody list every live room; the request limit is larger here: the
# parser's own (service/receiver/parse.py). This name (app.py's body limit, the OpenAPI
# document) and EVENT_SYNC_KINDS, re-exported above, say the parser's rules, never their own.
MAX_EVENT_BODY = MAX_BODY_BYTES
# Bodies up to this size (every room event, small snapshots) are parsed on the event loop.
INLINE_PARSE = 64 * 1024


async def _ingest(request: Request, event: Event, source: str) -> tracking.Ingested:
    settings = settings_of(request)
    result = await in_thread(lambda: tracking.ingest(settings, event, source))
    if result.new:
        metrics.event_received(source, "new", lag_ms=now_ms() - event.occurred_at)
    else:
        metrics.event_received(source, "duplicate")
    return result


def _v1_secrets(request: Request) -> tuple[str, ...]:
    secrets = settings_of(request).prosody_events_secrets
    if not secrets:
        raise NotFound(
            "Prosody event receiver is disabled: set PROSODY_EVENTS_SECRET", "receiver_disabled"
        )
    return secrets


def _rejected(request: Request, exc: SignatureError) -> Unauthorized:
    # The reason (stale, no match, malformed) helps operators; signatures are never logged.
    log.warning(
        "event rejected",
        extra={
            "fields": {
                "reason": exc.reason,
                # As much of it as a valid event id can be.
                "webhook_id": request.headers.get("webhook-id", "")[:MAX_ID_CHARS],
            }
        },
    )
    metrics.event_received("v1", "rejected")
    return Unauthorized("Invalid webhook signature or timestamp", "invalid_signature")


def admit_v1(request: Request) -> None:
    """Before a byte of the body (service/api/middleware.py BodyLimit's gate): the receiver is
    on and the `webhook-*` headers are present, well formed and fresh. A forger's upload is
    refused without being read; the signature itself needs the body (prosody_events)."""
    _v1_secrets(request)
    try:
        check_headers(request.headers, now_ms() / 1000)
    except SignatureError as exc:
        raise _rejected(request, exc) from None


async def prosody_events(request: Request) -> Response:
    secrets = _v1_secrets(request)
    body = await request.body()
    try:
        webhook_id = verify(secrets, request.headers, body, now_ms() / 1000)
    except SignatureError as exc:
        raise _rejected(request, exc) from None
    try:
        # A snapshot of a busy Prosody is megabytes: parsed on the event loop it would hold
        # up every other request for tens of milliseconds, so big bodies go to a thread.
        event = (
            await in_thread(lambda: parse_v1(body)) if len(body) > INLINE_PARSE else parse_v1(body)
        )
    except InvalidEvent as exc:
        metrics.event_received("v1", "invalid")
        raise BadRequest(str(exc), "invalid_event") from None
    if event.id != webhook_id:
        metrics.event_received("v1", "invalid")
        raise BadRequest("webhook-id does not match the event id", "invalid_event")
    await _ingest(request, event, "v1")
    return Response(status_code=204)


def admit_event_sync(request: Request) -> None:
    """Before a byte of the body (BodyLimit's gate): the receiver is on, the peer is on
    Prosody's network, and the token is right. Raises what event_sync would."""
    settings = settings_of(request)
    token = settings.event_sync_token
    if not token:
        raise NotFound("event_sync receiver is disabled: set EVENT_SYNC_TOKEN", "receiver_disabled")
    # Before the token: from outside Prosody's network the token cannot even be tried.
    peer = request.client.host if request.client is not None else None
    refused = admission.refused_peer(peer, request.headers, settings.event_sync_allowed_networks)
    if refused is not None:
        log.warning(
            "event rejected",
            extra={
                "fields": {"source": "event_sync", "reason": refused, "peer": (peer or "")[:64]}
            },
        )
        metrics.event_received("event_sync", "rejected")
        raise Forbidden(
            "event_sync is accepted only directly from Prosody's network "
            "(EVENT_SYNC_ALLOWED_NETWORKS), never through a proxy",
            "network_not_allowed",
        )
    try:
        require_bearer_key(request, token, "invalid_token", "event_sync token")
    except AppError:
        metrics.event_received("event_sync", "rejected")
        raise


async def event_sync(request: Request) -> Response:
    # The gate has run already when served through the app; said again, the route stands alone.
    admit_event_sync(request)
    settings = settings_of(request)
    kind: str = request.path_params["kind"]
    if kind not in EVENT_SYNC_KINDS:
        raise NotFound("Unknown event_sync event", "not_found")
    try:
        event = parse_event_sync(kind, await request.body(), host=settings.event_sync_host)
    except InvalidEvent as exc:
        metrics.event_received("event_sync", "invalid")
        raise BadRequest(str(exc), "invalid_event") from None
    await _refuse_out_of_time(request, event)
    result = await _ingest(request, event, "event_sync")
    return JSONResponse({"status": "ok", "duplicate": not result.new})


async def _refuse_out_of_time(request: Request, event: RoomEvent) -> None:
    """A backdated (or future) event_sync event: 400, audited, nothing else stored."""
    max_age = settings_of(request).event_sync_max_age
    arrived = now_ms()
    reason = admission.refused_time(event.occurred_at, arrived, max_age)
    if reason is None:
        return
    log.warning(
        "event rejected",
        extra={
            "fields": {
                "source": "event_sync",
                "reason": reason,
                "type": event.type.value,
                "room": event.room_name,
                "occurred_at": event.occurred_at,
            }
        },
    )
    metrics.event_received("event_sync", "stale")
    await in_thread(lambda: tracking.refused(event, "event_sync", reason, arrived, max_age))
    when = "before" if reason == "stale" else "after"
    raise BadRequest(
        f"event time is more than {max_age} seconds {when} the server's clock "
        "(EVENT_SYNC_MAX_AGE); check that Prosody's and the service's clocks are synchronised",
        f"{reason}_event",
    )


routes = [
    Route("/api/prosody/events", prosody_events, methods=["POST"]),
    Route("/api/event-sync/events/{kind:path}", event_sync, methods=["POST"]),
]
