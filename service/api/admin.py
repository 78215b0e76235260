"""Endpoints for the clinic's backend and operators, guarded by ADMIN_API_KEY."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import calls, directory, tracking
from service.api.common import (
    JSONResponse,
    in_thread,
    json_object,
    page_cursor,
    page_limit,
    require_admin,
    status_filter,
)
from service.api.video_calls import call_list
from service.wire import admin as wire


async def put_user(request: Request) -> Response:
    require_admin(request)
    body = await json_object(request)
    uid: str = request.path_params["uid"]
    row = await in_thread(lambda: directory.upsert_user(uid, body))
    return JSONResponse(wire.user_saved(row))


async def put_appointment(request: Request) -> Response:
    require_admin(request)
    body = await json_object(request)
    appointment_id: str = request.path_params["id"]
    row = await in_thread(lambda: directory.upsert_appointment(appointment_id, body))
    return JSONResponse(wire.appointment_saved(row))


async def list_calls(request: Request) -> Response:
    require_admin(request)
    status = status_filter(request)
    limit = page_limit(request)
    cursor = page_cursor(request)
    page = await in_thread(lambda: calls.list_for_admin(status, cursor, limit))
    return JSONResponse(call_list(page))


async def list_prosody_hosts(request: Request) -> Response:
    require_admin(request)
    found = await in_thread(tracking.prosody_hosts)
    return JSONResponse(wire.prosody_hosts(found))


routes = [
    Route("/api/admin/users/{uid}", put_user, methods=["PUT"]),
    Route("/api/admin/appointments/{id}", put_appointment, methods=["PUT"]),
    Route("/api/admin/video-calls", list_calls, methods=["GET"]),
    Route("/api/admin/prosody-hosts", list_prosody_hosts, methods=["GET"]),
]
