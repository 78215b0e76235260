"""Operators' view of the webhook outbox, guarded by ADMIN_API_KEY."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.api.common import (
    JSONResponse,
    encode_cursor,
    in_thread,
    page_cursor,
    page_limit,
    require_admin,
)
from service.errors import BadRequest, Conflict, NotFound
from service.fields import ID_PATTERN
from service.webhooks import outbox
from service.wire import admin as wire


def _status(request: Request) -> str | None:
    raw = request.query_params.get("status")
    if raw is None or raw == "":
        return None
    if raw not in outbox.STATUSES:
        raise BadRequest(f"status must be one of {', '.join(outbox.STATUSES)}", "invalid_query")
    return raw


async def list_messages(request: Request) -> Response:
    require_admin(request)
    status, limit, cursor = _status(request), page_limit(request), page_cursor(request)
    page = await in_thread(lambda: outbox.list_messages(status, cursor, limit))
    return JSONResponse(
        wire.WebhookMessageList(
            message="Webhook messages retrieved successfully",
            count=len(page.items),
            messages=[wire.message_summary(m) for m in page.items],
            next_cursor=encode_cursor(page.next_cursor),
        )
    )


async def retry_message(request: Request) -> Response:
    require_admin(request)
    message_id: str = request.path_params["id"]
    if not ID_PATTERN.fullmatch(message_id):
        raise BadRequest("Invalid message id", "invalid_id")
    row = await in_thread(lambda: outbox.retry(message_id))
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
