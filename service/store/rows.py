"""Plain, frozen copies of stored rows: what use cases return and the HTTP layer shapes.

A peewee row is live (it can be saved, it lazily loads, it belongs to a connection); these
are values. Each record has exactly its table's columns under the same names
(tests/store/test_rows.py checks that they stay in step with store/models.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

import peewee

R = TypeVar("R")


_NAMES: dict[type[Any], tuple[str, ...]] = {}


def record_of(cls: type[R], row: peewee.Model) -> R:
    """The record of class `cls` holding `row`'s column values."""
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    return cls(**{name: getattr(row, name) for name in names})


@dataclass(frozen=True, slots=True)
class UserRecord:
    uid: str
    first_name: str
    last_name: str
    email: str | None
    profile_image_url: str | None
    is_active: bool
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class AppointmentRecord:
    id: str
    doctor_uid: str
    patient_uid: str
    appointment_date: str
    start_time: str
    end_time: str
    timezone: str
    status: str
    ends_at: int
    created_at: int
    updated_at: int
    room_key: str | None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A video call as stored (store/models.py::VideoCall documents each column)."""

    id: str
    appointment_id: str
    room_name: str
    doctor_uid: str
    patient_uid: str
    status: str
    started_at: int | None
    ended_at: int | None
    duration: int | None
    doctor_joined_at: int | None
    patient_joined_at: int | None
    created_at: int
    updated_at: int
    tracked_by_server: bool
    doctor_presence: int | None
    patient_presence: int | None
    missing: str | None
    open_sessions: int
    duration_uncertain: bool
    waiting_role: str | None
    waiting_since: int | None
    doctor_wait: int | None
    patient_wait: int | None
    # JSON lists as stored (docs/events.md): lobby visits and recordings.
    lobby_visits: str
    recordings: str
    watched_hosts: str | None
    provisional_since: int | None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One derived occupant session of a call."""

    id: int
    call_id: str
    session: str
    user_id: str | None
    role: str
    joined_at: int | None
    left_at: int | None
    end_reason: str | None
    repaired: bool
    counted: bool
    left_at_latest: int | None


@dataclass(frozen=True, slots=True)
class HostRecord:
    """What the service last heard from one Prosody host."""

    host: str
    boot_id: str | None
    last_heard: int
    interval_s: int | None
    silent: bool
    updated_at: int


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One outbox message to the clinic."""

    id: str
    type: str
    call_id: str | None
    appointment_id: str | None
    sequence: int
    body: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: int
    lease_owner: str | None
    created_at: int
    updated_at: int
    delivered_at: int | None
