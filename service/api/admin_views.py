"""Read-only admin endpoints the operator console draws (GET /api/admin/console/...).

HTTP only: the query parameters are checked here, the views are read by service/views.py
and sent in their wire shapes (service/wire/console.py). Guarded by ADMIN_API_KEY like the
rest of /api/admin.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import audit, clock, directory, fields, views
from service.api import apidoc as doc
from service.api.common import (
    JSONResponse,
    in_thread,
    operator_who,
    require_admin,
    settings_of,
)
from service.errors import BadRequest
from service.fields import DATE_REGEX as DATE_PATTERN
from service.fields import ID_REGEX
from service.wire import console as wire

MAX_RANGE_DAYS = 366


# --- query parameters ---------------------------------------------------------------------


def _date_param(request: Request, name: str, default: str) -> str:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not fields.DATE_PATTERN.fullmatch(raw):
        raise BadRequest(f"{name} must be a date as YYYY-MM-DD", "invalid_query")
    try:
        date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} is not a calendar date", "invalid_query") from None
    return raw


def _doctor_param(request: Request) -> str | None:
    raw = request.query_params.get("doctor")
    if raw is None or raw == "":
        return None
    if not fields.ID_PATTERN.fullmatch(raw):
        raise BadRequest(f"doctor must be {fields.ID_RULE}", "invalid_query")
    return raw


# --- the views ------------------------------------------------------------------------------


async def get_day(request: Request) -> Response:
    who = operator_who(require_admin(request), request)
    now = clock.now_ms()
    day = _date_param(request, "date", clock.today_utc().isoformat())
    doctor = _doctor_param(request)
    settings = settings_of(request)

    def read() -> wire.ConsoleDay:
        view = views.day_view(day, doctor, now)
        detail = {"count": len(view.appointments), "date": day, "doctor": doctor}
        audit.record_read(settings, who, "console.day.read", detail=detail)
        return view

    return JSONResponse(await in_thread(read))


async def get_call(request: Request) -> Response:
    who = operator_who(require_admin(request), request)
    ref: str = request.path_params["ref"]
    directory.check_id(ref, "ref")
    now = clock.now_ms()
    settings = settings_of(request)

    def read() -> wire.ConsoleCall:
        view = views.call_view(ref, now)
        call = view.video_call
        audit.record_read(settings, who, "console.call.read", call.id, call.appointment_id)
        return view

    return JSONResponse(await in_thread(read))


async def get_doctors(request: Request) -> Response:
    who = operator_who(require_admin(request), request)
    today = clock.today_utc()
    last = _date_param(request, "to", today.isoformat())
    # 30 days up to `to`, or from the first representable day.
    default_first = date.fromordinal(max(1, date.fromisoformat(last).toordinal() - 29))
    first = _date_param(request, "from", default_first.isoformat())
    span = (date.fromisoformat(last) - date.fromisoformat(first)).days
    if span < 0:
        raise BadRequest("from must not be after to", "invalid_query")
    if span >= MAX_RANGE_DAYS:
        raise BadRequest(f"a range covers at most {MAX_RANGE_DAYS} days", "invalid_query")
    doctor = _doctor_param(request)
    settings = settings_of(request)

    def read() -> wire.ConsoleDoctors:
        view = views.doctors_view(first, last, doctor)
        detail = {"count": len(view.doctors), "from": first, "to": last, "doctor": doctor}
        audit.record_read(settings, who, "console.doctors.read", detail=detail)
        return view

    return JSONResponse(await in_thread(read))


async def get_health(request: Request) -> Response:
    who = operator_who(require_admin(request), request)
    settings = settings_of(request)
    now = clock.now_ms()

    def read() -> wire.ConsoleHealth:
        view = views.health_view(settings, now)
        audit.record_read(settings, who, "console.health.read")
        return view

    return JSONResponse(await in_thread(read))


routes = [
    Route("/api/admin/console/day", get_day, methods=["GET"]),
    Route("/api/admin/console/calls/{ref}", get_call, methods=["GET"]),
    Route("/api/admin/console/doctors", get_doctors, methods=["GET"]),
    Route("/api/admin/console/health", get_health, methods=["GET"]),
]


# --- the document's facts about these operations (service/api/openapi.py gathers them) ------

_DATE: Final = doc.string(format="date", pattern=DATE_PATTERN)
_DOCTOR: Final = doc.query("doctor", "Only this doctor's (a uid)", doc.string(pattern=ID_REGEX))


def _operation(operation_id: str, summary: str, answer: str, ok: str, **facts: Any) -> doc.JSON:
    """A console view: 200 with its shape, and the admin API's errors."""
    bad_request: doc.JSON | None = facts.pop("bad_request", None)
    not_found: doc.JSON | None = facts.pop("not_found", None)
    # The console's views document no Retry-After on their 503 (the rest of /api/admin does).
    by_status = {
        "200": doc.ok(ok, doc.ref(answer)),
        "503": doc.error("The database cannot be reached; retry later", ["database_unavailable"]),
    }
    if bad_request is not None:
        by_status["400"] = bad_request
    if not_found is not None:
        by_status["404"] = not_found
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            **facts,
            "tags": ["console"],
            "security": doc.ADMIN,
            "responses": doc.admin_responses(**by_status),
        }
    }


OPERATIONS: Final[doc.JSON] = {
    "/api/admin/console/day": _operation(
        "consoleDay",
        "One day's appointments and calls, grouped by what needs attention",
        "ConsoleDay",
        "The day",
        description="Groups: waiting (someone is in the room, the call has not started), "
        "in_progress, starting_soon (within 15 minutes, or due and nobody there), upcoming, "
        "completed, missed, failed, cancelled.",
        parameters=[
            doc.query("date", "The appointments' date (default: today in UTC)", _DATE),
            _DOCTOR,
        ],
        bad_request=doc.error("Bad date or doctor", ["invalid_query"]),
        not_found=doc.error(
            "The admin API is disabled (ADMIN_API_KEY unset)", ["admin_api_disabled"]
        ),
    ),
    "/api/admin/console/calls/{ref}": _operation(
        "consoleCall",
        "One call's record: presence sessions, status transitions, audit trail",
        "ConsoleCall",
        "The call",
        parameters=[doc.id_parameter("ref", "The video call's id or its appointment's id")],
        bad_request=doc.error("The ref is not a valid id", ["invalid_id"]),
        not_found=doc.error(
            "The admin API is disabled, no such call, or the ref holds a '/'",
            [
                "admin_api_disabled",
                "video_call_not_found",
                "appointment_not_found",
                doc.ROUTE_NOT_FOUND,
            ],
        ),
    ),
    "/api/admin/console/doctors": _operation(
        "consoleDoctors",
        "Per-doctor totals over a range of appointment dates, and minutes per day",
        "ConsoleDoctors",
        "Totals",
        parameters=[
            doc.query("from", "First day (default: 29 days before `to`)", _DATE),
            doc.query("to", "Last day (default: today in UTC)", _DATE),
            _DOCTOR,
        ],
        bad_request=doc.error(
            f"Bad date or doctor, from after to, or more than {MAX_RANGE_DAYS} days",
            ["invalid_query"],
        ),
        not_found=doc.error(
            "The admin API is disabled (ADMIN_API_KEY unset)", ["admin_api_disabled"]
        ),
    ),
    "/api/admin/console/health": _operation(
        "consoleHealth",
        "Prosody hosts as their stored events show them, repairs, the sweeper",
        "ConsoleHealth",
        "Health",
        not_found=doc.error(
            "The admin API is disabled (ADMIN_API_KEY unset)", ["admin_api_disabled"]
        ),
    ),
}
# The answers' schemas: components generated from these types.
SHAPES: Final = (wire.ConsoleDay, wire.ConsoleCall, wire.ConsoleDoctors, wire.ConsoleHealth)
