"""The operator console's read models: a day, one call's record, doctors' totals, health.

Read use cases (the cosmicpython way): each opens a read transaction, takes the rows of its
view from store/console.py, applies the domain's rules (attention, totals, names) and returns
the wire shape (service/wire/console.py) the HTTP edge sends as it is.
"""

from __future__ import annotations

import json
from typing import Any

from service import directory
from service.config import Settings
from service.domain import attention as attention_rules
from service.domain import totals as totals_rules
from service.domain.model import (
    AppointmentStatus,
    CallStatus,
    Role,
    missing_party,
    verification_of,
)
from service.domain.names import full_name
from service.errors import NotFound
from service.store import console as console_store
from service.store import outbox, uow
from service.store.models import Appointment, AuditEvent, OccupantSession, User, VideoCall
from service.wire import console as wire
from service.wire.admin import message_summary
from service.wire.base import iso
from service.wire.calls import call_full, lobby_of

HEALTH_WINDOW_MS = 24 * 3_600_000
# The sweeper is overdue after missing this many of its intervals.
SWEEPER_OVERDUE_INTERVALS = 3
# The health view lists this many of the newest failing webhook messages (the admin list has all).
FAILING_WEBHOOKS_SHOWN = 10
AXIS_CONTEXT_MS = 30 * 60_000


def _person(uid: str, users: dict[str, User]) -> wire.ConsolePerson:
    user = users.get(uid)
    name = full_name(uid, user.first_name, user.last_name) if user is not None else uid
    return wire.ConsolePerson(uid=uid, name=name)


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
) -> wire.ConsoleDayItem:
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
    return wire.ConsoleDayItem(
        appointment_id=appointment.id,
        appointment_status=appointment.status,
        appointment_date=appointment.appointment_date,
        start_time=appointment.start_time,
        end_time=appointment.end_time,
        timezone=appointment.timezone,
        starts_at=iso(starts),
        ends_at=iso(ends),
        attention=group.value,
        doctor=_person(appointment.doctor_uid, users),
        patient=_person(appointment.patient_uid, users),
        present=sorted(role.value for role in present),
        waiting_since=iso(waiting_since),
        missing=missing,
        video_call=_call_brief(call) if call is not None else None,
    )


def _call_brief(call: VideoCall) -> wire.ConsoleCallBrief:
    return wire.ConsoleCallBrief(
        id=call.id,
        status=call.status,
        started_at=iso(call.started_at),
        ended_at=iso(call.ended_at),
        duration=call.duration,
        tracked_by_server=bool(call.tracked_by_server),
        verification=verification_of(bool(call.tracked_by_server)).value,
    )


def day_view(day: str, doctor: str | None, now: int) -> wire.ConsoleDay:
    with uow.read():
        rows = console_store.day(day, doctor)
        items = [
            _day_item(a, c, rows.open_sessions.get(c.id, []) if c else [], rows.users, now)
            for a, c in rows.appointments
        ]
        counts = {group.value: 0 for group in attention_rules.Attention}
        for item in items:
            counts[item.attention] += 1
        return wire.ConsoleDay(
            date=day,
            now=iso(now),
            doctor=doctor,
            doctors=[_person(uid, rows.users) for uid in rows.doctors],
            groups=[group.value for group in attention_rules.Attention],
            counts=counts,
            appointments=sorted(items, key=lambda i: (i.starts_at, i.appointment_id)),
        )


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


def _audit(entry: AuditEvent) -> wire.ConsoleAuditEntry:
    return wire.ConsoleAuditEntry(
        at=iso(entry.at),
        actor=entry.actor,
        action=entry.action,
        detail=_audit_detail(entry.detail),
    )


# The audit actions that change a call's status, on the timeline: a transition, and a
# correction by late evidence (docs/events.md, "Late evidence"), whose cause says so.
STATUS_CHANGES = ("call.transition", "call.corrected")
CORRECTION_CAUSE = "correction: {}"


def _transition(entry: wire.ConsoleAuditEntry) -> wire.ConsoleTransition:
    cause = entry.detail.get("cause")
    if entry.action == "call.corrected":
        cause = CORRECTION_CAUSE.format(cause)
    return wire.ConsoleTransition(
        at=entry.at,
        from_=entry.detail.get("from"),
        to=entry.detail.get("to"),
        actor=entry.actor,
        cause=cause,
    )


def call_view(ref: str, now: int) -> wire.ConsoleCall:
    with uow.read():
        rows = console_store.call(ref)
        if rows is None:
            raise NotFound("Video call not found", "video_call_not_found")
        call, appointment = rows.call, rows.appointment
        if appointment is None:
            raise NotFound("Appointment not found", "appointment_not_found")
        starts, ends = _bounds(appointment)
        low, high = _axis(starts, ends, rows.sessions, now)
        audit = [_audit(entry) for entry in rows.trail]
        full = call_full(call)
        return wire.ConsoleCall(
            now=iso(now),
            video_call=wire.ConsoleVideoCall(
                id=full.id,
                appointment_id=full.appointment_id,
                room_name=full.room_name,
                status=full.status,
                started_at=full.started_at,
                ended_at=full.ended_at,
                duration=full.duration,
                doctor_joined_at=full.doctor_joined_at,
                patient_joined_at=full.patient_joined_at,
                doctor_wait_seconds=full.doctor_wait_seconds,
                patient_wait_seconds=full.patient_wait_seconds,
                recordings=list(full.recordings),
                created_at=full.created_at,
                updated_at=full.updated_at,
                tracked_by_server=bool(call.tracked_by_server),
                verification=full.verification,
                settled=full.settled,
                doctor_presence=call.doctor_presence,
                patient_presence=call.patient_presence,
                missing=call.missing,
                open_sessions=call.open_sessions,
            ),
            appointment=wire.ConsoleAppointment(
                id=appointment.id,
                appointment_date=appointment.appointment_date,
                start_time=appointment.start_time,
                end_time=appointment.end_time,
                timezone=appointment.timezone,
                status=appointment.status,
                starts_at=iso(starts),
                ends_at=iso(ends),
            ),
            doctor=_person(call.doctor_uid, rows.users),
            patient=_person(call.patient_uid, rows.users),
            axis=wire.ConsoleAxis(from_=iso(low), to=iso(high)),
            sessions=[
                wire.ConsoleSession(
                    session=s.session,
                    role=s.role,
                    user_id=s.user_id,
                    joined_at=iso(s.joined_at),
                    left_at=iso(s.left_at),
                    end_reason=s.end_reason,
                    repaired=bool(s.repaired),
                    counted=bool(s.counted),
                )
                for s in rows.sessions
            ],
            lobby=list(lobby_of(call)),
            transitions=[_transition(a) for a in audit if a.action in STATUS_CHANGES],
            audit=audit,
            webhooks=[message_summary(m) for m in outbox.messages_of_call(call.id)],
        )


# --- doctors --------------------------------------------------------------------------------


def doctors_view(first: str, last: str, doctor: str | None) -> wire.ConsoleDoctors:
    with uow.read():
        facts = [
            totals_rules.CallFacts(
                day=day,
                doctor_uid=call.doctor_uid,
                status=CallStatus(call.status),
                duration=call.duration,
                patient_wait=call.patient_wait,
            )
            for day, call in console_store.calls_between(first, last, doctor)
        ]
        entries = totals_rules.totals(facts)
        users = console_store.users(e.doctor_uid for e in entries)
        return wire.ConsoleDoctors(
            from_=first,
            to=last,
            doctor=doctor,
            doctors=[
                wire.ConsoleDoctorTotals(
                    uid=e.doctor_uid,
                    name=_person(e.doctor_uid, users).name,
                    calls=e.calls,
                    completed=e.completed,
                    no_shows=e.no_shows,
                    minutes=e.minutes,
                    average_duration=e.average_duration,
                    no_show_rate=e.no_show_rate,
                    average_patient_wait=e.average_patient_wait,
                )
                for e in entries
            ],
            days=[
                wire.ConsoleDayMinutes(date=day, minutes=minutes)
                for day, minutes in totals_rules.minutes_per_day(facts, first, last)
            ],
        )


# --- health ---------------------------------------------------------------------------------


def health_view(settings: Settings, now: int) -> wire.ConsoleHealth:
    with uow.read():
        rows = console_store.health(now - HEALTH_WINDOW_MS)
        sweep = rows.sweep
        interval_ms = settings.sweep_interval * 1000
        failed, retrying, failing = outbox.delivery_health(FAILING_WEBHOOKS_SHOWN)
        return wire.ConsoleHealth(
            now=iso(now),
            window_hours=HEALTH_WINDOW_MS // 3_600_000,
            prosody_hosts=[
                wire.ConsoleProsodyHost(
                    host=h.host,
                    last_event_at=iso(h.last_event_at),
                    last_event_type=h.last_event_type,
                    boot_id=h.boot_id,
                    last_seq=h.last_seq,
                    events=h.events,
                    seq_gaps=h.seq_gaps,
                    restarts=h.restarts,
                )
                for h in rows.hosts
            ],
            repairs=wire.ConsoleRepairs(total=sum(rows.repairs.values()), by_reason=rows.repairs),
            sweeper=wire.ConsoleSweeper(
                interval_seconds=settings.sweep_interval,
                last_run_at=iso(sweep.ran_at) if sweep is not None else None,
                derived=sweep.derived if sweep is not None else None,
                no_shows=sweep.no_shows if sweep is not None else None,
                overdue=interval_ms > 0
                and (sweep is None or now - sweep.ran_at > SWEEPER_OVERDUE_INTERVALS * interval_ms),
            ),
            webhooks=wire.ConsoleWebhooks(
                enabled=settings.webhooks.enabled,
                failed=failed,
                retrying=retrying,
                failing=[message_summary(m) for m in failing],
            ),
        )
