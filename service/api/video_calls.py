"""The five endpoints of the API document, plus statistics."""

from __future__ import annotations

from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from service import audit, calls
from service.api import apidoc as doc
from service.api.common import (
    JSONResponse,
    as_caller,
    encode_cursor,
    page_cursor,
    page_limit,
    parse_json_object,
    settings_of,
    status_filter,
    user_who,
)
from service.domain.model import Action
from service.errors import BadRequest
from service.fields import DATE_PATTERN, ID_PATTERN, MAX_ID_CHARS
from service.requests import InitiateRequest, StatusRequest, decode
from service.wire import calls as wire
from service.wire import stats as wire_stats
from service.wire.base import APPOINTMENT_STATUSES, CALL_STATUSES

# Ids are at most this long (fields.Id); the OpenAPI document states it too.
MAX_REF_LENGTH = MAX_ID_CHARS


def _ref(request: Request) -> str:
    ref: str = request.path_params["ref"]
    if not ID_PATTERN.fullmatch(ref):
        raise BadRequest("Invalid appointment or video call id", "invalid_id")
    return ref


async def initiate(request: Request) -> Response:
    raw = await request.body()
    settings = settings_of(request)

    def initiate_for(uid: str) -> calls.TokenGrant:
        body = parse_json_object(raw)
        if body.get("appointmentId") in (None, ""):
            raise BadRequest("appointmentId is required", "missing_appointment_id")
        request_body = decode(
            InitiateRequest,
            body,
            "invalid_body",
            {("appointmentId", "value"): "invalid_id"},
        )
        return calls.initiate(settings, uid, request_body.appointment_id)

    grant = await as_caller(request, initiate_for)
    return JSONResponse(_grant("Video call initiated successfully", grant))


async def token(request: Request) -> Response:
    settings = settings_of(request)
    grant = await as_caller(request, lambda uid: calls.refresh_token(settings, uid, _ref(request)))
    return JSONResponse(_grant("Token retrieved successfully", grant))


def _grant(message: str, grant: calls.TokenGrant) -> wire.TokenGrant:
    return wire.token_grant(message, grant.call, grant.role, grant.token, grant.link, grant.domain)


def call_list(page: calls.CallPage) -> wire.VideoCallList:
    """A page of calls, for the caller's list and the admin's."""
    items = [wire.list_item(v.call, v.appointment, v.doctor, v.patient) for v in page.items]
    return wire.video_call_list(items, encode_cursor(page.next_cursor))


def _action(raw: bytes) -> Action:
    body = parse_json_object(raw)
    if body.get("action") in (None, ""):
        raise BadRequest("action is required", "missing_action")
    return decode(StatusRequest, body, "unknown_action").action


async def update_status(request: Request) -> Response:
    raw = await request.body()
    call = await as_caller(
        request, lambda uid: calls.report_status(uid, _ref(request), _action(raw))
    )
    return JSONResponse(
        wire.StatusUpdated(
            message="Video call status updated successfully", video_call=wire.call_full(call)
        )
    )


async def details(request: Request) -> Response:
    settings = settings_of(request)

    def read(uid: str) -> calls.CallView:
        view = calls.details(uid, _ref(request))
        audit.record_read(
            settings, user_who(uid, request), "call.read", view.call.id, view.call.appointment_id
        )
        return view

    view = await as_caller(request, read)
    return JSONResponse(
        wire.details(
            view.call,
            view.appointment,
            view.doctor,
            view.patient,
            view.sessions,
            view.source,
            view.reports,
        )
    )


async def list_calls(request: Request) -> Response:
    settings = settings_of(request)

    def page_for(uid: str) -> calls.CallPage:
        status, limit, cursor = status_filter(request), page_limit(request), page_cursor(request)
        page = calls.list_for_user(uid, status, cursor, limit)
        audit.record_read(
            settings, user_who(uid, request), "calls.listed", detail={"count": len(page.items)}
        )
        return page

    page = await as_caller(request, page_for)
    return JSONResponse(call_list(page))


def _date(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not DATE_PATTERN.fullmatch(raw):
        raise BadRequest(f"{name} must be a date YYYY-MM-DD", "invalid_query")
    return raw


async def stats(request: Request) -> Response:
    settings = settings_of(request)

    def read(uid: str) -> calls.Stats:
        first, last = _date(request, "from"), _date(request, "to")
        result = calls.stats_for_doctor(uid, first, last)
        detail = {"count": result.total_calls, "from": first, "to": last}
        audit.record_read(settings, user_who(uid, request), "stats.read", detail=detail)
        return result

    result = await as_caller(request, read)
    assert result.verified is not None  # stats_for_doctor always counts them
    return JSONResponse(wire_stats.stats(result, result.verified))


class OnlyMethods:
    """An ASGI app answering 405 with `Allow`, for a literal path that a later `{ref}` route
    would otherwise take. A plain ASGI app gets every method (Starlette limits a function
    endpoint to GET), and it documents no operation of its own."""

    def __init__(self, *allowed: str) -> None:
        self.allow = ", ".join(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise HTTPException(405, headers={"Allow": self.allow})


routes = [
    Route("/api/video-calls", list_calls, methods=["GET"]),
    Route("/api/video-calls/initiate", initiate, methods=["POST"]),
    # Every other method: without this, GET /api/video-calls/initiate would be read as the
    # details of a call with the id "initiate" (404); it is a known path, wrong method (405).
    Route("/api/video-calls/initiate", OnlyMethods("POST")),
    # Reserved words come before the {ref} routes so they are never read as ids.
    Route("/api/video-calls/stats", stats, methods=["GET"]),
    Route("/api/video-calls/token/{ref}", token, methods=["GET"]),
    Route("/api/video-calls/{ref}/status", update_status, methods=["PATCH"]),
    Route("/api/video-calls/{ref}", details, methods=["GET"]),
]

# --- the document's facts about these operations (service/api/openapi.py gathers them) ------

REF_PARAMETER: Final = {
    "name": "ref",
    "in": "path",
    "required": True,
    "description": "The appointment id or the video call's id (frontends send either)",
    "schema": doc.string(minLength=1, maxLength=MAX_REF_LENGTH, pattern="^[^/]+$"),
    "examples": {"appointment": {"value": "clxxx123456789"}},
}
_BAD_REF: Final = doc.error(
    f"The ref is not a valid id (1-{MAX_ID_CHARS} of A-Z a-z 0-9 _ . : @ -)", ["invalid_id"]
)
_NOT_PARTICIPANT: Final = doc.error(
    "The caller is not a participant, or the caller's account is inactive",
    ["not_participant", "account_inactive"],
)


def _participant_responses(ok: doc.JSON) -> doc.JSON:
    """200, 401, 403 and 503 of an endpoint for an appointment's participants."""
    return {
        "200": ok,
        "401": doc.UNAUTHORIZED,
        "403": doc.error(
            "The caller is not a participant (the same answer when no such appointment or call "
            "exists), or an account is inactive",
            ["not_participant", "account_inactive"],
        ),
        "503": doc.UNAVAILABLE,
    }


def _ref_not_found(codes: list[str]) -> doc.JSON:
    return doc.error("No such appointment or video call", [*codes, doc.ROUTE_NOT_FOUND])


def _operation(operation_id: str, summary: str, **facts: Any) -> doc.JSON:
    return {
        "operationId": operation_id,
        "summary": summary,
        **({"description": facts.pop("description")} if "description" in facts else {}),
        "tags": ["video calls"],
        "security": doc.FIREBASE,
        **facts,
    }


_GRANTED: Final = doc.ok("A token for the caller", doc.ref("TokenGrant"))
OPERATIONS: Final[doc.JSON] = {
    "/api/video-calls": {
        "get": _operation(
            "listVideoCalls",
            "The caller's video calls (as doctor or patient), newest first",
            parameters=[doc.STATUS_QUERY, doc.LIMIT_QUERY, doc.CURSOR_QUERY],
            responses={
                "200": doc.ok("One page", doc.ref("VideoCallList")),
                "403": doc.INACTIVE,
                "400": doc.error("Bad status, limit or cursor", doc.PAGING_CODES),
                "401": doc.UNAUTHORIZED,
                "503": doc.UNAVAILABLE,
            },
        )
    },
    "/api/video-calls/initiate": {
        "post": _operation(
            "initiateVideoCall",
            "Create the appointment's call if missing and grant the caller a token",
            description="The appointment must be CONFIRMED or IN_PROGRESS and both accounts "
            "active. A FAILED call goes back to SCHEDULED (a retry).",
            requestBody=doc.body("InitiateRequest"),
            responses={
                **_participant_responses(_GRANTED),
                "400": doc.error(
                    "Malformed body, or the appointment is not CONFIRMED/IN_PROGRESS "
                    "(then with currentStatus)",
                    [
                        *doc.BODY_CODES,
                        "missing_appointment_id",
                        "invalid_body",
                        "invalid_id",
                        "appointment_not_active",
                    ],
                    current_status=APPOINTMENT_STATUSES,
                ),
                "409": doc.error(
                    "The call is COMPLETED, CANCELLED or NO_SHOW (with currentStatus), or "
                    "`room_conflict`: an appointment stored before ids differing only in case "
                    "were refused, whose room another one holds",
                    ["call_closed", "room_conflict"],
                    current_status=CALL_STATUSES,
                ),
                "408": doc.SLOW_BODY,
                "413": doc.TOO_LARGE,
            },
        )
    },
    "/api/video-calls/stats": {
        "get": _operation(
            "videoCallStats",
            "Statistics of the caller's calls as doctor",
            parameters=[
                doc.date_query("from", "Appointments on or after this date"),
                doc.date_query("to", "Appointments on or before this date"),
            ],
            responses={
                "200": doc.ok("Statistics", doc.ref("Stats")),
                "403": doc.INACTIVE,
                "400": doc.error("from/to is not YYYY-MM-DD", ["invalid_query"]),
                "401": doc.UNAUTHORIZED,
                "503": doc.UNAVAILABLE,
            },
        )
    },
    "/api/video-calls/token/{ref}": {
        "get": _operation(
            "videoCallToken",
            "A fresh token for an initiated call",
            parameters=[REF_PARAMETER],
            responses={
                **_participant_responses(_GRANTED),
                "400": _BAD_REF,
                "404": _ref_not_found(["video_call_not_found", "appointment_not_found"]),
                "409": doc.error(
                    "The call is COMPLETED, CANCELLED, FAILED or NO_SHOW",
                    ["call_closed"],
                    current_status=CALL_STATUSES,
                ),
            },
        )
    },
    "/api/video-calls/{ref}/status": {
        "patch": _operation(
            "updateVideoCallStatus",
            "Report join, start, end, cancel or failed",
            description="A repeat of a report that already took effect is a no-op (200).",
            parameters=[REF_PARAMETER],
            requestBody=doc.body("StatusRequest"),
            responses={
                **_participant_responses(doc.ok("The call afterwards", doc.ref("StatusUpdated"))),
                "400": doc.error(
                    "Malformed ref or body, or an unknown action",
                    [*doc.BODY_CODES, "invalid_id", "missing_action", "unknown_action"],
                ),
                "404": _ref_not_found(["video_call_not_found"]),
                "403": _NOT_PARTICIPANT,
                "409": doc.error(
                    "The status rules refuse this transition",
                    ["invalid_transition"],
                    current_status=[*CALL_STATUSES, "UNKNOWN"],
                ),
                "408": doc.SLOW_BODY,
                "413": doc.TOO_LARGE,
            },
        )
    },
    "/api/video-calls/{ref}": {
        "get": _operation(
            "videoCallDetails",
            "The call, its appointment and both participants",
            parameters=[REF_PARAMETER],
            responses={
                **_participant_responses(doc.ok("Details", doc.ref("VideoCallDetails"))),
                "400": _BAD_REF,
                "404": _ref_not_found(["video_call_not_found", "appointment_not_found"]),
                "403": _NOT_PARTICIPANT,
                "405": doc.error(
                    "ref `initiate`: /api/video-calls/initiate is a path of its own (POST only)",
                    ["method_not_allowed"],
                ),
            },
        )
    },
}
# The answers' schemas: components generated from these types.
SHAPES: Final = (
    wire.VideoCallList,
    wire.TokenGrant,
    wire.StatusUpdated,
    wire.VideoCallDetails,
    wire_stats.Stats,
)
