"""Read-only admin endpoints the operator console draws (GET /api/admin/console/...).

Each answers one view: a day's appointments grouped by what needs attention, one call's
record, per-doctor totals, and the health of what feeds the record (Prosody, the sweeper).
Guarded by ADMIN_API_KEY like the rest of /api/admin.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import clock, directory, fields
from service.api.common import JSONResponse, in_thread, require_admin, settings_of
from service.api.shapes import call_full, iso, lobby_of
from service.api.webhooks import message_summary
from service.config import Settings
from service.domain import attention as attention_rules
from service.domain import totals as totals_rules
from service.domain.model import AppointmentStatus, CallStatus, Role, missing_party
from service.errors import BadRequest, NotFound
from service.store import audit_log, clinic, event_log, operations, outbox, uow, video_calls
from service.store.models import Appointment, OccupantSession, User, VideoCall

MAX_RANGE_DAYS = 366
HEALTH_WINDOW_MS = 24 * 3_600_000
# The sweeper is overdue after missing this many of its intervals.
SWEEPER_OVERDUE_INTERVALS = 3
# The health view lists this many of the newest failing webhook messages (the admin list has all).
FAILING_WEBHOOKS_SHOWN = 10
AXIS_CONTEXT_MS = 30 * 60_000


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


# --- shared shapes --------------------------------------------------------------------------


def _person(uid: str, users: dict[str, User]) -> dict[str, Any]:
    user = users.get(uid)
    name = f"{user.first_name} {user.last_name}".strip() if user is not None else ""
    return {"uid": uid, "name": name or uid}


def _bounds(appointment: Appointment) -> tuple[int, int]:
    starts = directory.appointment_starts_at(
        appointment.appointment_date, appointment.start_time, appointment.timezone
    )
    return starts, appointment.ends_at


# --- the day --------------------------------------------------------------------------------


def _present(call: VideoCall | None, sessions: list[OccupantSession]) -> dict[Role, int]:
    """Who is in the room now, and since when (their earliest open session)."""
    if call is None:
        return {}
    here: dict[Role, int] = {}
    if call.tracked_by_server:
        for s in sessions:
            role = Role(s.role)
            if role in (Role.DOCTOR, Role.PATIENT) and s.joined_at is not None:
                here[role] = min(here.get(role, s.joined_at), s.joined_at)
    elif CallStatus(call.status) is CallStatus.SCHEDULED:
        # Client reports only: a reported join is the best knowledge there is.
        for role, joined in (
            (Role.DOCTOR, call.doctor_joined_at),
            (Role.PATIENT, call.patient_joined_at),
        ):
            if joined is not None:
                here[role] = joined
    return here


def _day_item(
    appointment: Appointment,
    call: VideoCall | None,
    sessions: list[OccupantSession],
    users: dict[str, User],
    now: int,
) -> dict[str, Any]:
    starts, ends = _bounds(appointment)
    present = _present(call, sessions)
    status = CallStatus(call.status) if call is not None else None
    group = attention_rules.attention(
        attention_rules.Situation(
            appointment_status=AppointmentStatus(appointment.status),
            call_status=status,
            starts_at=starts,
            ends_at=ends,
            present=frozenset(present),
        ),
        now,
    )
    missing = None
    if group is attention_rules.Attention.MISSED:
        missing = (call.missing if call is not None else None) or missing_party(
            doctor_came=call is not None and call.doctor_joined_at is not None,
            patient_came=call is not None and call.patient_joined_at is not None,
        )
    waiting_since = min(present.values()) if group is attention_rules.Attention.WAITING else None
    return {
        "appointmentId": appointment.id,
        "appointmentStatus": appointment.status,
        "appointmentDate": appointment.appointment_date,
        "startTime": appointment.start_time,
        "endTime": appointment.end_time,
        "timezone": appointment.timezone,
        "startsAt": iso(starts),
        "endsAt": iso(ends),
        "attention": group.value,
        "doctor": _person(appointment.doctor_uid, users),
        "patient": _person(appointment.patient_uid, users),
        "present": sorted(role.value for role in present),
        "waitingSince": iso(waiting_since),
        "missing": missing,
        "videoCall": _call_brief(call) if call is not None else None,
    }


def _call_brief(call: VideoCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "status": call.status,
        "startedAt": iso(call.started_at),
        "endedAt": iso(call.ended_at),
        "duration": call.duration,
        "trackedByServer": bool(call.tracked_by_server),
    }


def day_view(day: str, doctor: str | None, now: int) -> dict[str, Any]:
    with uow.read():
        rows = operations.day_appointments(day, doctor)
        doctors = operations.doctors_on(day)
        users = clinic.get_users(
            [*doctors, *(uid for a, _ in rows for uid in (a.doctor_uid, a.patient_uid))]
        )
        open_by_call: dict[str, list[OccupantSession]] = {}
        for session in operations.open_sessions(c.id for _, c in rows if c is not None):
            open_by_call.setdefault(session.call_id, []).append(session)
        items = [
            _day_item(a, c, open_by_call.get(c.id, []) if c else [], users, now) for a, c in rows
        ]
        counts = {group.value: 0 for group in attention_rules.Attention}
        for item in items:
            counts[item["attention"]] += 1
        return {
            "date": day,
            "now": iso(now),
            "doctor": doctor,
            "doctors": [_person(uid, users) for uid in doctors],
            "groups": [group.value for group in attention_rules.Attention],
            "counts": counts,
            "appointments": sorted(items, key=lambda i: (i["startsAt"], i["appointmentId"])),
        }


async def get_day(request: Request) -> Response:
    require_admin(request)
    now = clock.now_ms()
    day = _date_param(request, "date", clock.today_utc().isoformat())
    doctor = _doctor_param(request)
    return JSONResponse(await in_thread(lambda: day_view(day, doctor, now)))


# --- one call -------------------------------------------------------------------------------


def _audit_detail(raw: str) -> dict[str, Any]:
    value = json.loads(raw or "{}")
    return value if isinstance(value, dict) else {}


def _axis(starts: int, ends: int, sessions: list[OccupantSession], now: int) -> tuple[int, int]:
    """The time axis of a call's timeline: its sessions, and the appointment around them.

    Without sessions, the appointment. With them, the appointment widens the axis by at most
    AXIS_CONTEXT_MS on either side, so that a long booking does not shrink a short call.
    """
    times: list[int] = []
    for s in sessions:
        if s.joined_at is None:
            continue
        times += [s.joined_at, s.left_at if s.left_at is not None else now]
    if not times:
        return starts, ends
    low, high = min(times), max(times)
    return max(min(low, starts), low - AXIS_CONTEXT_MS), min(
        max(high, ends), high + AXIS_CONTEXT_MS
    )


def _transition(entry: dict[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = entry["detail"]
    return {
        "at": entry["at"],
        "from": detail.get("from"),
        "to": detail.get("to"),
        "actor": entry["actor"],
        "cause": detail.get("cause"),
    }


def call_view(ref: str, now: int) -> dict[str, Any]:
    with uow.read():
        call = video_calls.find_call(ref)
        if call is None:
            raise NotFound("Video call not found", "video_call_not_found")
        appointment = clinic.get_appointment(call.appointment_id)
        if appointment is None:
            raise NotFound("Appointment not found", "appointment_not_found")
        users = clinic.get_users([call.doctor_uid, call.patient_uid])
        sessions = event_log.sessions_of(call.id)
        trail = audit_log.audit_trail(call.id)
        starts, ends = _bounds(appointment)
        low, high = _axis(starts, ends, sessions, now)
        audit = [
            {
                "at": iso(entry.at),
                "actor": entry.actor,
                "action": entry.action,
                "detail": _audit_detail(entry.detail),
            }
            for entry in trail
        ]
        return {
            "now": iso(now),
            "videoCall": {
                **call_full(call),
                "trackedByServer": bool(call.tracked_by_server),
                "doctorPresence": call.doctor_presence,
                "patientPresence": call.patient_presence,
                "missing": call.missing,
                "openSessions": call.open_sessions,
            },
            "appointment": {
                "id": appointment.id,
                "appointmentDate": appointment.appointment_date,
                "startTime": appointment.start_time,
                "endTime": appointment.end_time,
                "timezone": appointment.timezone,
                "status": appointment.status,
                "startsAt": iso(starts),
                "endsAt": iso(ends),
            },
            "doctor": _person(call.doctor_uid, users),
            "patient": _person(call.patient_uid, users),
            "axis": {"from": iso(low), "to": iso(high)},
            "sessions": [
                {
                    "session": s.session,
                    "role": s.role,
                    "userId": s.user_id,
                    "joinedAt": iso(s.joined_at),
                    "leftAt": iso(s.left_at),
                    "endReason": s.end_reason,
                    "repaired": bool(s.repaired),
                    "counted": bool(s.counted),
                }
                for s in sessions
            ],
            "lobby": lobby_of(call),
            "transitions": [_transition(a) for a in audit if a["action"] == "call.transition"],
            "audit": audit,
            "webhooks": [message_summary(m) for m in outbox.messages_of_call(call.id)],
        }


async def get_call(request: Request) -> Response:
    require_admin(request)
    ref: str = request.path_params["ref"]
    directory.check_id(ref, "ref")
    now = clock.now_ms()
    return JSONResponse(await in_thread(lambda: call_view(ref, now)))


# --- doctors --------------------------------------------------------------------------------


def doctors_view(first: str, last: str, doctor: str | None) -> dict[str, Any]:
    with uow.read():
        facts = [
            totals_rules.CallFacts(
                day=day,
                doctor_uid=call.doctor_uid,
                status=CallStatus(call.status),
                duration=call.duration,
                patient_wait=call.patient_wait,
            )
            for day, call in operations.calls_between(first, last, doctor)
        ]
        entries = totals_rules.totals(facts)
        users = clinic.get_users(e.doctor_uid for e in entries)
        return {
            "from": first,
            "to": last,
            "doctor": doctor,
            "doctors": [
                {
                    **_person(e.doctor_uid, users),
                    "calls": e.calls,
                    "completed": e.completed,
                    "noShows": e.no_shows,
                    "minutes": e.minutes,
                    "averageDuration": e.average_duration,
                    "noShowRate": e.no_show_rate,
                    "averagePatientWait": e.average_patient_wait,
                }
                for e in entries
            ],
            "days": [
                {"date": day, "minutes": minutes}
                for day, minutes in totals_rules.minutes_per_day(facts, first, last)
            ],
        }


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
    return JSONResponse(await in_thread(lambda: doctors_view(first, last, doctor)))


# --- health ---------------------------------------------------------------------------------


def health_view(settings: Settings, now: int) -> dict[str, Any]:
    with uow.read():
        since = now - HEALTH_WINDOW_MS
        hosts = operations.host_health(since)
        repairs = operations.repairs_since(since)
        sweep = operations.last_sweep()
        interval_ms = settings.sweep_interval * 1000
        failed, retrying, failing = outbox.delivery_health(FAILING_WEBHOOKS_SHOWN)
        return {
            "now": iso(now),
            "windowHours": HEALTH_WINDOW_MS // 3_600_000,
            "prosodyHosts": [
                {
                    "host": h.host,
                    "lastEventAt": iso(h.last_event_at),
                    "lastEventType": h.last_event_type,
                    "bootId": h.boot_id,
                    "lastSeq": h.last_seq,
                    "events": h.events,
                    "seqGaps": h.seq_gaps,
                    "restarts": h.restarts,
                }
                for h in hosts
            ],
            "repairs": {"total": sum(repairs.values()), "byReason": repairs},
            "sweeper": {
                "intervalSeconds": settings.sweep_interval,
                "lastRunAt": iso(sweep.ran_at) if sweep is not None else None,
                "derived": sweep.derived if sweep is not None else None,
                "noShows": sweep.no_shows if sweep is not None else None,
                "overdue": interval_ms > 0
                and (sweep is None or now - sweep.ran_at > SWEEPER_OVERDUE_INTERVALS * interval_ms),
            },
            "webhooks": {
                "enabled": settings.webhooks.enabled,
                "failed": failed,
                "retrying": retrying,
                "failing": [message_summary(m) for m in failing],
            },
        }


async def get_health(request: Request) -> Response:
    require_admin(request)
    settings = settings_of(request)
    now = clock.now_ms()
    return JSONResponse(await in_thread(lambda: health_view(settings, now)))


routes = [
    Route("/api/admin/console/day", get_day, methods=["GET"]),
    Route("/api/admin/console/calls/{ref}", get_call, methods=["GET"]),
    Route("/api/admin/console/doctors", get_doctors, methods=["GET"]),
    Route("/api/admin/console/health", get_health, methods=["GET"]),
]
