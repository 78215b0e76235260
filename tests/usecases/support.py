"""Helpers for the use-case and store tests: seeding through the directory use cases,
reading the database directly, and building Prosody events as typed values."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from service import directory
from service.config import Settings
from service.domain.presence import CallDerivation, Params, derive_call
from service.domain.prosody import (
    EventType,
    Occupant,
    ProsodyStarted,
    Recording,
    RoomEvent,
    Snapshot,
    SnapshotOccupant,
    SnapshotRoom,
)
from service.store import uow
from service.store.models import Appointment, AuditEvent, VideoCall
from tests.clock import FrozenClock, appointment_around

T = TypeVar("T")
HOST = "muc.meet.example.test"
ROOM = "appointment_appt1"


def read(fn: Callable[[], T]) -> T:
    """Run `fn` on a connection of the bound database (the unit of work alone, no use case)."""
    with uow.read():
        return fn()


def write(fn: Callable[[], T]) -> T:
    """Run `fn` in a write transaction on a connection of the bound database."""
    with uow.write():
        return fn()


def audits(action: str) -> list[tuple[str, str | None, str | None, dict[str, Any]]]:
    """(actor, call id, appointment id, detail) of every audit row of `action`, in order."""

    def rows() -> list[tuple[str, str | None, str | None, dict[str, Any]]]:
        query = AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.id)
        return [(r.actor, r.call_id, r.appointment_id, json.loads(r.detail)) for r in query]

    return read(rows)


def user(uid: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "firstName": uid.title(),
        "lastName": "Test",
        "email": f"{uid}@example.test",
    }
    body.update(fields)
    return directory.upsert_user(uid, body)


def appointment(clock: FrozenClock, appointment_id: str, **fields: Any) -> dict[str, Any]:
    """CONFIRMED and under way by default: two hours either side of now, in Berlin."""
    body: dict[str, Any] = {
        "doctorUid": "doc",
        "patientUid": "pat",
        **appointment_around(clock.ms),
        "status": "CONFIRMED",
    }
    body.update(fields)
    return directory.upsert_appointment(appointment_id, body)


@dataclass
class Prosody:
    """One Prosody boot: events with unique ids and increasing sequence numbers."""

    host: str = HOST
    boot: str = "boot-1"
    seq: int = 0

    def _next(self) -> tuple[str, int]:
        self.seq += 1
        return f"evt_{uuid.uuid4()}", self.seq

    def room(
        self,
        kind: EventType,
        room: str,
        at: int,
        occupant: Occupant | None = None,
        reason: str | None = None,
        recording: Recording | None = None,
    ) -> RoomEvent:
        event_id, seq = self._next()
        return RoomEvent(
            id=event_id,
            type=kind,
            occurred_at=at,
            host=self.host,
            boot_id=self.boot,
            seq=seq,
            room_name=room,
            meeting_id="meeting-1",
            occupant=occupant,
            reason=reason,
            recording=recording,
        )

    def created(self, room: str, at: int) -> RoomEvent:
        return self.room(EventType.ROOM_CREATED, room, at)

    def joined(self, room: str, session: str, uid: str | None, at: int) -> RoomEvent:
        return self.room(EventType.OCCUPANT_JOINED, room, at, Occupant(session, uid))

    def left(self, room: str, session: str, uid: str | None, at: int) -> RoomEvent:
        return self.room(EventType.OCCUPANT_LEFT, room, at, Occupant(session, uid), "left")

    def destroyed(self, room: str, at: int) -> RoomEvent:
        return self.room(EventType.ROOM_DESTROYED, room, at)

    def recording(self, kind: EventType, room: str, session: str, at: int) -> RoomEvent:
        return self.room(kind, room, at, recording=Recording(session, "file"))

    def snapshot(
        self,
        at: int,
        rooms: dict[str, list[tuple[str, str | None, int]]] | None = None,
        interval_s: int | None = None,
    ) -> Snapshot:
        """`rooms`: room name -> [(session, uid, joined_at)]."""
        event_id, seq = self._next()
        listed = tuple(
            SnapshotRoom(name, "meeting-1", tuple(SnapshotOccupant(*o) for o in occupants))
            for name, occupants in (rooms or {}).items()
        )
        return Snapshot(event_id, at, self.host, self.boot, seq, listed, interval_s)

    def started(self, at: int) -> ProsodyStarted:
        event_id, seq = self._next()
        return ProsodyStarted(event_id, at, self.host, self.boot, seq)


def derived_from(
    settings: Settings,
    now_ms: int,
    call_id: str,
    sent: Sequence[RoomEvent | Snapshot | ProsodyStarted],
) -> CallDerivation:
    """What the full derivation gives for a call from every event sent (the specification
    the stored record is compared with)."""
    call = read(lambda: VideoCall.get_by_id(call_id))
    return derive_call(
        [e for e in sent if isinstance(e, RoomEvent)],
        [e for e in sent if isinstance(e, Snapshot)],
        [e for e in sent if isinstance(e, ProsodyStarted)],
        Params(
            room_name=call.room_name,
            doctor_uid=call.doctor_uid,
            patient_uid=call.patient_uid,
            appointment_end_ms=read(lambda: Appointment.get_by_id(call.appointment_id).ends_at),
            call_end_grace_ms=settings.call_end_grace * 1000,
            no_show_grace_ms=settings.no_show_grace * 1000,
            max_call_ms=settings.max_call_duration * 1000,
        ),
        now_ms=now_ms,
    )
