"""Read-only admin endpoints the operator console draws (GET /api/admin/console/...).

HTTP only: the query parameters are checked here, the views are read by service/views.py
and sent in their wire shapes (service/wire/console.py). Guarded by ADMIN_API_KEY like the
rest of /api/admin.
"""

from __future__ import annotations

from datetime import date

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import clock, directory, fields, views
from service.api.common import JSONResponse, in_thread, require_admin, settings_of
from service.errors import BadRequest

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
        raise BadRequest(
            "doctor must be 1-128 characters of letters, digits and _.:@-", "invalid_query"
        )
    return raw


# --- the views ------------------------------------------------------------------------------


async def get_day(request: Request) -> Response:
    require_admin(request)
    now = clock.now_ms()
    day = _date_param(request, "date", clock.today_utc().isoformat())
    doctor = _doctor_param(request)
    return JSONResponse(await in_thread(lambda: views.day_view(day, doctor, now)))


async def get_call(request: Request) -> Response:
    require_admin(request)
    ref: str = request.path_params["ref"]
    directory.check_id(ref, "ref")
    now = clock.now_ms()
    return JSONResponse(await in_thread(lambda: views.call_view(ref, now)))


async def get_doctors(request: Request) -> Response:
    require_admin(request)
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
    return JSONResponse(await in_thread(lambda: views.doctors_view(first, last, doctor)))


async def get_health(request: Request) -> Response:
    require_admin(request)
    settings = settings_of(request)
    now = clock.now_ms()
    return JSONResponse(await in_thread(lambda: views.health_view(settings, now)))


routes = [
    Route("/api/admin/console/day", get_day, methods=["GET"]),
    Route("/api/admin/console/calls/{ref}", get_call, methods=["GET"]),
    Route("/api/admin/console/doctors", get_doctors, methods=["GET"]),
    Route("/api/admin/console/health", get_health, methods=["GET"]),
]
