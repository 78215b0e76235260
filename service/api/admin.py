"""Endpoints for the clinic's backend and operators, guarded by ADMIN_API_KEY."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import calls, directory, tracking
from service.api import shapes
from service.api.common import (
    JSONResponse,
    encode_cursor,
    in_thread,
    json_object,
    page_cursor,
    page_limit,
    require_admin,
    status_filter,
)


async def put_user(request: Request) -> Response:
    require_admin(request)
    body = await json_object(request)
    uid: str = request.path_params["uid"]
    row = await in_thread(lambda: directory.upsert_user(uid, body))
    return JSONResponse({"message": "User saved", "user": shapes.user_admin(row)})


async def put_appointment(request: Request) -> Response:
    require_admin(request)
    body = await json_object(request)
    appointment_id: str = request.path_params["id"]
    row = await in_thread(lambda: directory.upsert_appointment(appointment_id, body))
    return JSONResponse(
        {"message": "Appointment saved", "appointment": shapes.appointment_admin(row)}
    )


async def list_calls(request: Request) -> Response:
    require_admin(request)
    status = status_filter(request)
    limit = page_limit(request)
    cursor = page_cursor(request)
    page = await in_thread(lambda: calls.list_for_admin(status, cursor, limit))
    return JSONResponse(
        {
            "message": "Video calls retrieved successfully",
            "count": len(page.items),
            "videoCalls": [shapes.call_list_item(v) for v in page.items],
            "nextCursor": encode_cursor(page.next_cursor),
        }
    )


async def list_prosody_hosts(request: Request) -> Response:
    require_admin(request)
    found = await in_thread(tracking.prosody_hosts)
    items = [shapes.prosody_host(row, silent) for row, silent in found]
    return JSONResponse(
        {"message": "Prosody hosts retrieved successfully", "count": len(items), "hosts": items}
    )


routes = [
    Route("/api/admin/users/{uid}", put_user, methods=["PUT"]),
    Route("/api/admin/appointments/{id}", put_appointment, methods=["PUT"]),
    Route("/api/admin/video-calls", list_calls, methods=["GET"]),
    Route("/api/admin/prosody-hosts", list_prosody_hosts, methods=["GET"]),
]
