"""Operators' view of the webhook outbox, guarded by ADMIN_API_KEY."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import audit
from service.api import apidoc as doc
from service.api.common import (
    JSONResponse,
    encode_cursor,
    in_thread,
    operator_who,
    page_cursor,
    page_limit,
    require_admin,
    settings_of,
)
from service.errors import BadRequest, Conflict, NotFound
from service.fields import ID_PATTERN
from service.webhooks import messages as webhook_messages
from service.webhooks import outbox
from service.wire import admin as wire
from service.wire.base import ISO_PATTERN


def _status(request: Request) -> str | None:
    raw = request.query_params.get("status")
    if raw is None or raw == "":
        return None
    if raw not in outbox.STATUSES:
        raise BadRequest(f"status must be one of {', '.join(outbox.STATUSES)}", "invalid_query")
    return raw


async def list_messages(request: Request) -> Response:
    who = operator_who(require_admin(request), request)
    status, limit, cursor = _status(request), page_limit(request), page_cursor(request)
    settings = settings_of(request)

    def read() -> outbox.MessagePage:
        page = outbox.list_messages(status, cursor, limit)
        detail = {"count": len(page.items), "status": status}
        audit.record_read(settings, who, "webhooks.listed", detail=detail)
        return page

    page = await in_thread(read)
    return JSONResponse(
        wire.WebhookMessageList(
            message="Webhook messages retrieved successfully",
            count=len(page.items),
            messages=[wire.message_summary(m) for m in page.items],
            next_cursor=encode_cursor(page.next_cursor),
        )
    )


async def retry_message(request: Request) -> Response:
    who = operator_who(require_admin(request, write=True), request)
    message_id: str = request.path_params["id"]
    if not ID_PATTERN.fullmatch(message_id):
        raise BadRequest("Invalid message id", "invalid_id")
    row = await in_thread(lambda: outbox.retry(message_id, who))
    if row is None:
        raise NotFound("Webhook message not found", "message_not_found")
    if row.status == outbox.DELIVERED:
        raise Conflict("Webhook message was already delivered", "message_delivered")
    return JSONResponse(
        wire.WebhookMessageQueued(
            message="Webhook message queued", webhook_message=wire.message_summary(row)
        )
    )


routes = [
    Route("/api/admin/webhooks/messages", list_messages, methods=["GET"]),
    Route("/api/admin/webhooks/messages/{id}/retry", retry_message, methods=["POST"]),
]


# --- the document's facts about these operations (service/api/openapi.py gathers them) ------

OPERATIONS: Final[doc.JSON] = {
    "/api/admin/webhooks/messages": {
        "get": {
            "operationId": "adminListWebhookMessages",
            "summary": "Webhook messages to the clinic, or those in one status, newest first",
            "tags": ["admin", "webhooks"],
            "security": doc.ADMIN,
            "parameters": [
                doc.query(
                    "status",
                    "Only messages in this status (empty means any)",
                    doc.string(enum=list(outbox.STATUSES)),
                ),
                doc.LIMIT_QUERY,
                doc.CURSOR_QUERY,
            ],
            "responses": doc.admin_responses(
                **{
                    "200": doc.ok("One page", doc.ref("WebhookMessageList")),
                    "400": doc.error("Bad status, limit or cursor", doc.PAGING_CODES),
                }
            ),
        }
    },
    "/api/admin/webhooks/messages/{id}/retry": {
        "post": {
            "operationId": "adminRetryWebhookMessage",
            "summary": "Attempt a failed (or pending) message again now, from attempt one",
            "tags": ["admin", "webhooks"],
            "security": doc.ADMIN,
            "parameters": [doc.id_parameter("id", "The message id (`msg_...`)")],
            "responses": doc.admin_responses(
                **{
                    "200": doc.ok("Queued", doc.ref("WebhookMessageQueued")),
                    "400": doc.error("Not a valid message id", ["invalid_id"]),
                    "403": doc.ADMIN_WRITE_FORBIDDEN,
                    "404": doc.error(
                        "No such message, or the admin API is disabled",
                        ["message_not_found", "admin_api_disabled", doc.ROUTE_NOT_FOUND],
                    ),
                    "409": doc.error("The message was already delivered", ["message_delivered"]),
                }
            ),
        }
    },
}
# The answers' schemas: components generated from these types.
SHAPES: Final = (wire.WebhookMessageList, wire.WebhookMessageQueued)

# What the service POSTs to WEBHOOK_URL (service/webhooks/outbox.py builds it). Hand-written:
# `data` holds different members per message type, which no one type says.
_PARTY: Final = doc.string(enum=["doctor", "patient"])
WEBHOOK_BODY: Final[doc.JSON] = {
    "type": "object",
    "properties": {
        "type": doc.string(enum=list(webhook_messages.ALL_TYPES)),
        "timestamp": doc.string(
            format="date-time", pattern=ISO_PATTERN, description="When the message was created"
        ),
        "data": {
            "type": "object",
            "properties": {
                "appointmentId": doc.string(),
                "sequence": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Strictly increasing over one call's messages in the order "
                    "they were created: drop one older than the last you kept",
                },
                "videoCall": doc.ref("VideoCall"),
                "presence": doc.ref("Presence"),
                "waiting": {
                    "type": "object",
                    "properties": {"role": _PARTY, "since": doc.string()},
                    "required": ["role", "since"],
                    "description": "call.waiting only",
                },
                "participant": {
                    "type": "object",
                    "properties": {
                        "role": _PARTY,
                        "at": doc.string(),
                        "reason": {"type": ["string", "null"]},
                    },
                    "required": ["role", "at"],
                    "description": "participant.* only; reason on participant.left",
                },
                "recording": {
                    "type": "object",
                    "properties": {
                        "startedAt": doc.string(),
                        "endedAt": {"type": ["string", "null"]},
                        "mode": {"type": ["string", "null"], "enum": ["file", "stream", None]},
                    },
                    "required": ["startedAt", "endedAt", "mode"],
                    "description": "recording.* only; endedAt on recording.stopped",
                },
            },
            "required": [],
            "description": "Empty for webhook.test",
        },
    },
    "required": ["type", "timestamp", "data"],
}
WEBHOOKS: Final[doc.JSON] = {
    "clinicEvent": {
        "post": {
            "summary": "What the service sends to WEBHOOK_URL",
            "description": "Signed with Standard Webhooks (webhook-id, webhook-timestamp, "
            "webhook-signature: one `v1,` signature per WEBHOOK_SECRET). Answer 2xx to accept; "
            "anything else is retried, 410 stops.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": doc.ref("WebhookBody")}},
            },
            "responses": {"200": {"description": "Accepted (any 2xx)"}},
        }
    }
}
