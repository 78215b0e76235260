"""The five endpoints of the API document, plus statistics."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service import calls
from service.api import shapes
from service.api.common import (
    caller_uid,
    encode_cursor,
    in_thread,
    json_object,
    page_cursor,
    page_limit,
    settings_of,
    status_filter,
)
from service.directory import ID_PATTERN
from service.domain.model import Action
from service.errors import BadRequest

DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Ids are at most this long (directory.ID_PATTERN); the OpenAPI document states it too.
MAX_REF_LENGTH = 128


def _ref(request: Request) -> str:
    ref: str = request.path_params["ref"]
    if not ID_PATTERN.fullmatch(ref):
        raise BadRequest("Invalid appointment or video call id", "invalid_id")
    return ref


async def initiate(request: Request) -> Response:
    uid = await caller_uid(request)
    body = await json_object(request)
    appointment_id = body.get("appointmentId")
    if appointment_id is None or appointment_id == "":
        raise BadRequest("appointmentId is required", "missing_appointment_id")
    if not isinstance(appointment_id, str):
        raise BadRequest("appointmentId must be a string", "invalid_body")
    if not ID_PATTERN.fullmatch(appointment_id):
        raise BadRequest("appointmentId is not a valid id", "invalid_id")
    settings = settings_of(request)
    grant = await in_thread(lambda: calls.initiate(settings, uid, appointment_id))
    return JSONResponse(shapes.token_grant("Video call initiated successfully", grant))


async def token(request: Request) -> Response:
    uid = await caller_uid(request)
    ref = _ref(request)
    settings = settings_of(request)
    grant = await in_thread(lambda: calls.refresh_token(settings, uid, ref))
    return JSONResponse(shapes.token_grant("Token retrieved successfully", grant))


async def update_status(request: Request) -> Response:
    uid = await caller_uid(request)
    ref = _ref(request)
    body = await json_object(request)
    raw = body.get("action")
    if raw is None or raw == "":
        raise BadRequest("action is required", "missing_action")
    try:
        action = Action(raw) if isinstance(raw, str) else None
    except ValueError:
        action = None
    if action is None:
        allowed = ", ".join(a.value for a in Action)
        raise BadRequest(f"Unknown action; use one of {allowed}", "unknown_action")
    call = await in_thread(lambda: calls.report_status(uid, ref, action))
    return JSONResponse(
        {"message": "Video call status updated successfully", "videoCall": shapes.call_full(call)}
    )


async def details(request: Request) -> Response:
    uid = await caller_uid(request)
    ref = _ref(request)
    view = await in_thread(lambda: calls.details(uid, ref))
    return JSONResponse(
        {"message": "Video call details retrieved successfully", **shapes.call_details(view)}
    )


async def list_calls(request: Request) -> Response:
    uid = await caller_uid(request)
    status = status_filter(request)
    limit = page_limit(request)
    cursor = page_cursor(request)
    page = await in_thread(lambda: calls.list_for_user(uid, status, cursor, limit))
    return JSONResponse(
        {
            "message": "Video calls retrieved successfully",
            "count": len(page.items),
            "videoCalls": [shapes.call_list_item(v) for v in page.items],
            "nextCursor": encode_cursor(page.next_cursor),
        }
    )


def _date(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not DATE_PATTERN.fullmatch(raw):
        raise BadRequest(f"{name} must be a date YYYY-MM-DD", "invalid_query")
    return raw


async def stats(request: Request) -> Response:
    uid = await caller_uid(request)
    date_from, date_to = _date(request, "from"), _date(request, "to")
    result = await in_thread(lambda: calls.stats_for_doctor(uid, date_from, date_to))
    return JSONResponse(
        {"message": "Video call statistics retrieved successfully", **shapes.stats(result)}
    )


routes = [
    Route("/api/video-calls", list_calls, methods=["GET"]),
    Route("/api/video-calls/initiate", initiate, methods=["POST"]),
    # Reserved words come before the {ref} routes so they are never read as ids.
    Route("/api/video-calls/stats", stats, methods=["GET"]),
    Route("/api/video-calls/token/{ref}", token, methods=["GET"]),
    Route("/api/video-calls/{ref}/status", update_status, methods=["PATCH"]),
    Route("/api/video-calls/{ref}", details, methods=["GET"]),
]
