"""Queries for operators: a day's appointments and who is in their rooms, a range's calls for
totals, Prosody's health and repairs, and the sweeper's record of its last run (a call's own
record reads through video_calls, event_log and audit_log).

Read-only except `record_sweep`. Callers hold the connection (store/uow.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import peewee

from service.domain.model import CallStatus
from service.store.batches import chunks
from service.store.models import (
    Appointment,
    AuditEvent,
    OccupantSession,
    ProsodyEvent,
    SweeperRun,
    VideoCall,
)

SWEEPER_NAME = "sweeper"


def calls_by_status(day: str) -> dict[str, int]:
    """Calls of the appointments on `day`, per status (every status, zeros included)."""
    rows: Any = (
        VideoCall.select(VideoCall.status, peewee.fn.COUNT(VideoCall.id))
        .join(Appointment, on=(Appointment.id == VideoCall.appointment_id))
        .where(Appointment.appointment_date == day)
        .group_by(VideoCall.status)
        .tuples()
    )
    counts = {status.value: 0 for status in CallStatus}
    counts.update({status: int(n) for status, n in rows})
    return counts


def day_appointments(
    day: str, doctor_uid: str | None
) -> list[tuple[Appointment, VideoCall | None]]:
    query = Appointment.select().where(Appointment.appointment_date == day)
    if doctor_uid is not None:
        query = query.where(Appointment.doctor_uid == doctor_uid)
    appointments = list(query.order_by(Appointment.start_time, Appointment.id))
    ids = [a.id for a in appointments]
    calls: dict[str, VideoCall] = {}
    for chunk in chunks(ids):
        calls.update(
            {
                c.appointment_id: c
                for c in VideoCall.select().where(VideoCall.appointment_id.in_(chunk))
            }
        )
    return [(a, calls.get(a.id)) for a in appointments]


def doctors_on(day: str) -> list[str]:
    rows: Any = (
        Appointment.select(Appointment.doctor_uid)
        .where(Appointment.appointment_date == day)
        .distinct()
        .tuples()
    )
    return sorted(uid for (uid,) in rows)


def open_sessions(call_ids: Iterable[str]) -> list[OccupantSession]:
    """Sessions still in the room (counted ones: the doctor's and patient's devices)."""
    rows: list[OccupantSession] = []
    for chunk in chunks(list(call_ids)):
        rows.extend(
            OccupantSession.select().where(
                OccupantSession.call_id.in_(chunk)
                & OccupantSession.left_at.is_null()
                & OccupantSession.joined_at.is_null(False)
            )
        )
    return rows


def calls_between(
    date_from: str, date_to: str, doctor_uid: str | None
) -> list[tuple[str, VideoCall]]:
    """(appointment date, call) of every call of the appointments in the range."""
    query = (
        VideoCall.select(VideoCall, Appointment.appointment_date)
        .join(Appointment, on=(Appointment.id == VideoCall.appointment_id), attr="appt")
        .where(Appointment.appointment_date.between(date_from, date_to))
    )
    if doctor_uid is not None:
        query = query.where(VideoCall.doctor_uid == doctor_uid)
    rows: Any = query
    return [(call.appt.appointment_date, call) for call in rows]


# --- Prosody's health --------------------------------------------------------------------


@dataclass(frozen=True)
class HostHealth:
    host: str
    last_event_at: int
    last_event_type: str
    boot_id: str | None
    last_seq: int | None
    events: int
    seq_gaps: int
    restarts: int


def host_health(since_ms: int) -> list[HostHealth]:
    """Each host that ever sent an event: its latest event, and its last window's counts.

    A gap is a sequence number missing between the lowest and highest one seen of a boot in
    the window (lost, or still on its way: a late arrival closes it).
    """
    hosts: list[HostHealth] = []
    latest_times: Any = (
        ProsodyEvent.select(ProsodyEvent.host, peewee.fn.MAX(ProsodyEvent.occurred_at))
        .group_by(ProsodyEvent.host)
        .tuples()
    )
    for host, last_at in sorted(latest_times):
        last = (
            ProsodyEvent.select()
            .where((ProsodyEvent.host == host) & (ProsodyEvent.occurred_at == last_at))
            .order_by(ProsodyEvent.seq.desc(nulls="LAST"))
            .first()
        )
        boots: Any = (
            ProsodyEvent.select(
                ProsodyEvent.boot_id,
                peewee.fn.MIN(ProsodyEvent.seq),
                peewee.fn.MAX(ProsodyEvent.seq),
                peewee.fn.COUNT(ProsodyEvent.seq.distinct()),
                peewee.fn.COUNT(ProsodyEvent.id),
            )
            .where((ProsodyEvent.host == host) & (ProsodyEvent.occurred_at >= since_ms))
            .group_by(ProsodyEvent.boot_id)
            .tuples()
        )
        events = gaps = 0
        for boot_id, low, high, distinct, count in boots:
            events += int(count)
            if boot_id is not None and low is not None:
                gaps += int(high) - int(low) + 1 - int(distinct)
        restarts = (
            ProsodyEvent.select()
            .where(
                (ProsodyEvent.host == host)
                & (ProsodyEvent.type == "prosody.started")
                & (ProsodyEvent.occurred_at >= since_ms)
            )
            .count()
        )
        hosts.append(
            HostHealth(
                host=host,
                last_event_at=int(last_at),
                last_event_type=last.type if last is not None else "",
                boot_id=last.boot_id if last is not None else None,
                last_seq=last.seq if last is not None else None,
                events=events,
                seq_gaps=gaps,
                restarts=restarts,
            )
        )
    return hosts


def repairs_since(since_ms: int) -> dict[str, int]:
    """Presence repairs (sessions the service had to close itself), per reason."""
    counts: dict[str, int] = {}
    rows: Any = (
        AuditEvent.select(AuditEvent.detail)
        .where((AuditEvent.action == "presence.repaired") & (AuditEvent.at >= since_ms))
        .tuples()
    )
    for (detail,) in rows:
        reason = str(json.loads(detail).get("reason", "unknown"))
        counts[reason] = counts.get(reason, 0) + 1
    return counts


def record_sweep(at: int, derived: int, no_shows: int) -> None:
    SweeperRun.insert(name=SWEEPER_NAME, ran_at=at, derived=derived, no_shows=no_shows).on_conflict(
        conflict_target=[SweeperRun.name],
        preserve=[SweeperRun.ran_at, SweeperRun.derived, SweeperRun.no_shows],
    ).execute()


def last_sweep() -> SweeperRun | None:
    row: SweeperRun | None = SweeperRun.get_or_none(SweeperRun.name == SWEEPER_NAME)
    return row
