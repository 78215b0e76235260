"""What the operator console's views read: one function per view, in the caller's transaction.

The read side of service/views.py (the console's read models): each gathers the rows one view
draws, from the queries of the store's other modules, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from service.store import audit_log, clinic, event_log, operations, video_calls
from service.store.models import (
    Appointment,
    AuditEvent,
    OccupantSession,
    SweeperRun,
    User,
    VideoCall,
)


@dataclass(frozen=True)
class DayRows:
    appointments: list[tuple[Appointment, VideoCall | None]]
    doctors: list[str]
    users: dict[str, User]
    # Each call's open occupant sessions (who is in its room now).
    open_sessions: dict[str, list[OccupantSession]] = field(default_factory=dict)


def day(date: str, doctor: str | None) -> DayRows:
    rows = operations.day_appointments(date, doctor)
    doctors = operations.doctors_on(date)
    users = clinic.get_users(
        [*doctors, *(uid for a, _ in rows for uid in (a.doctor_uid, a.patient_uid))]
    )
    open_by_call: dict[str, list[OccupantSession]] = {}
    for session in operations.open_sessions(c.id for _, c in rows if c is not None):
        open_by_call.setdefault(session.call_id, []).append(session)
    return DayRows(rows, doctors, users, open_by_call)


@dataclass(frozen=True)
class CallRows:
    call: VideoCall
    appointment: Appointment | None
    users: dict[str, User]
    sessions: list[OccupantSession]
    trail: list[AuditEvent]


def call(ref: str) -> CallRows | None:
    """A call by its id or its appointment's id, with what its record shows; None if none."""
    found = video_calls.find_call(ref)
    if found is None:
        return None
    return CallRows(
        call=found,
        appointment=clinic.get_appointment(found.appointment_id),
        users=clinic.get_users([found.doctor_uid, found.patient_uid]),
        sessions=event_log.sessions_of(found.id),
        trail=audit_log.audit_trail(found.id),
    )


def calls_between(first: str, last: str, doctor: str | None) -> list[tuple[str, VideoCall]]:
    return operations.calls_between(first, last, doctor)


def users(uids: Iterable[str]) -> dict[str, User]:
    return clinic.get_users(uids)


@dataclass(frozen=True)
class HealthRows:
    hosts: list[operations.HostHealth]
    repairs: dict[str, int]
    sweep: SweeperRun | None


def health(since: int) -> HealthRows:
    return HealthRows(
        hosts=operations.host_health(since),
        repairs=operations.repairs_since(since),
        sweep=operations.last_sweep(),
    )
