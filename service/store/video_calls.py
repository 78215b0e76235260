"""The video_calls rows: a call's creation, its locks, its status transitions, the presence
record Prosody's events give it, the hosts it is watched on, a doctor's totals, and the
demo reset that forgets calls.

Callers hold the connection and the transaction (store/uow.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from typing import Any

import peewee

from service.domain.model import AppointmentStatus, CallStatus
from service.domain.record import PresenceRecord
from service.store.compiled import Compiled, unconverted
from service.store.db import current, is_postgres
from service.store.models import (
    Appointment,
    CallHost,
    DerivationState,
    OccupantSession,
    ProsodyEvent,
    SnapshotRoom,
    VideoCall,
)


def new_call_id() -> str:
    return f"vc_{uuid.uuid4().hex}"


_CALL = Compiled(lambda i: VideoCall.select().where(VideoCall.id == i), "c")
_CALL_BY_APPOINTMENT = Compiled(
    lambda a: VideoCall.select().where(VideoCall.appointment_id == a), "a"
)
_CALL_BY_REF = Compiled(
    lambda a, c: VideoCall.select().where((VideoCall.appointment_id == a) | (VideoCall.id == c)),
    "a",
    "c",
)


def _locked_call(call_id: str) -> peewee.ModelSelect[VideoCall]:
    query = VideoCall.select().where(VideoCall.id == call_id)
    return query.for_update() if is_postgres(current()) else query


_LOCKED_CALL = Compiled(_locked_call, "c")


def get_call(call_id: str) -> VideoCall | None:
    return _CALL.first(VideoCall, call_id)


def lock_call(call_id: str) -> VideoCall:
    """Re-read a call inside a write transaction, holding its row lock until commit.

    PostgreSQL takes the row lock with FOR UPDATE; SQLite already holds the database write
    lock (BEGIN IMMEDIATE), so a plain read is as good there.
    """
    call = _LOCKED_CALL.first(VideoCall, call_id)
    if call is None:
        raise peewee.DoesNotExist(f"video call {call_id}")
    return call


def lock_calls(call_ids: Sequence[str]) -> dict[str, VideoCall]:
    """`lock_call` for several calls in one statement, locked in id order (as every writer
    locks them, so two never wait for each other); an unknown id is left out."""
    query = VideoCall.select().where(VideoCall.id.in_(list(call_ids))).order_by(VideoCall.id)
    if is_postgres(current()):
        query = query.for_update()
    return {call.id: call for call in query}


def find_call(ref: str) -> VideoCall | None:
    """A path parameter holds an appointment id or a call id: frontends send either.

    One query over both unique indexes; an appointment-id match wins if both match.
    """
    rows = list(
        VideoCall.select().where((VideoCall.appointment_id == ref) | (VideoCall.id == ref)).limit(2)
    )
    for row in rows:
        if row.appointment_id == ref:
            return row
    return rows[0] if rows else None


def create_call_if_missing(
    appointment: Appointment, room_name: str, now_ms: int, *, tracked_by_server: bool = False
) -> tuple[VideoCall, bool]:
    """Insert the appointment's call unless it exists, and return the stored call.

    INSERT ... ON CONFLICT DO NOTHING on the unique appointment_id: of any number of racing
    `initiate` requests exactly one inserts, and all of them then read the same row.
    `tracked_by_server`: presence comes from Prosody (PRESENCE_SOURCE=server) from the start.
    """
    new_id = new_call_id()
    VideoCall.insert(
        id=new_id,
        appointment_id=appointment.id,
        room_name=room_name,
        doctor_uid=appointment.doctor_uid,
        patient_uid=appointment.patient_uid,
        status=CallStatus.SCHEDULED.value,
        tracked_by_server=tracked_by_server,
        created_at=now_ms,
        updated_at=now_ms,
    ).on_conflict_ignore().execute()
    call = get_call_by_appointment(appointment.id)
    if call is None:  # pragma: no cover - the row exists: we or a racer just inserted it
        raise RuntimeError("video call vanished after insert")
    return call, call.id == new_id


def get_call_by_appointment(appointment_id: str) -> VideoCall | None:
    return _CALL_BY_APPOINTMENT.first(VideoCall, appointment_id)


def transition_call(
    call_id: str,
    from_statuses: Iterable[CallStatus],
    to_status: CallStatus,
    now_ms: int,
    **fields: Any,
) -> bool:
    """One conditional UPDATE: succeeds only if the call is still in one of `from_statuses`."""
    values: dict[str, Any] = {"status": to_status.value, "updated_at": now_ms, **fields}
    updated: int = (
        VideoCall.update(**values)
        .where((VideoCall.id == call_id) & (VideoCall.status.in_([s.value for s in from_statuses])))
        .execute()
    )
    return updated == 1


def record_first_join(
    call_id: str, field_name: str, now_ms: int, open_statuses: Iterable[CallStatus]
) -> bool:
    """Set the participant's first join time if unset; False if the call is not open."""
    field = getattr(VideoCall, field_name)
    updated: int = (
        VideoCall.update({field: peewee.fn.COALESCE(field, now_ms), VideoCall.updated_at: now_ms})
        .where((VideoCall.id == call_id) & (VideoCall.status.in_([s.value for s in open_statuses])))
        .execute()
    )
    return updated == 1


def start_if_both_joined(call_id: str, now_ms: int) -> bool:
    """SCHEDULED -> IN_PROGRESS, only once both first-join times are set."""
    updated: int = (
        VideoCall.update(
            status=CallStatus.IN_PROGRESS.value,
            started_at=peewee.fn.COALESCE(VideoCall.started_at, now_ms),
            updated_at=now_ms,
        )
        .where(
            (VideoCall.id == call_id)
            & (VideoCall.status == CallStatus.SCHEDULED.value)
            & VideoCall.doctor_joined_at.is_null(False)
            & VideoCall.patient_joined_at.is_null(False)
        )
        .execute()
    )
    return updated == 1


def end_call(
    call_id: str, from_statuses: Iterable[CallStatus], now_ms: int, ended_at: int, duration: int
) -> bool:
    """-> COMPLETED with the end and duration the domain computed (rules.client_end) from the
    start read under the same lock."""
    return transition_call(
        call_id,
        from_statuses,
        CallStatus.COMPLETED,
        now_ms,
        ended_at=ended_at,
        duration=duration,
    )


def scheduled_calls_ended_before(deadline_ms: int, limit: int = 1000) -> list[VideoCall]:
    """SCHEDULED calls never reported by Prosody whose appointment ended before the deadline."""
    return list(
        VideoCall.select(VideoCall)
        .join(Appointment, on=(Appointment.id == VideoCall.appointment_id))
        .where(
            (VideoCall.status == CallStatus.SCHEDULED.value)
            & ~VideoCall.tracked_by_server
            & (Appointment.ends_at <= deadline_ms)
            # A settled appointment (cancelled, completed) is not a missed one.
            & Appointment.status.in_(
                [AppointmentStatus.CONFIRMED.value, AppointmentStatus.IN_PROGRESS.value]
            )
        )
        .order_by(VideoCall.id)
        .limit(limit)
    )


PRESENCE_FIELDS = (
    "doctor_joined_at",
    "patient_joined_at",
    "started_at",
    "ended_at",
    "duration",
    "doctor_presence",
    "patient_presence",
    "missing",
    "open_sessions",
    "updated_at",
    "duration_uncertain",
    "waiting_role",
    "waiting_since",
    "doctor_wait",
    "patient_wait",
    "lobby_visits",
    "recordings",
    "watched_hosts",
)
_SAVE_PRESENCE = Compiled(
    lambda call, *values: VideoCall.update(
        tracked_by_server=True,
        **{
            name: unconverted(value) if name == "duration_uncertain" else value
            for name, value in zip(PRESENCE_FIELDS, values, strict=True)
        },
    ).where(VideoCall.id == call),
    "c",
    -1,
    -2,
    -3,
    -4,
    -5,
    -6,
    -7,
    "m",
    -8,
    -9,
    "u",
    "w",
    -10,
    -11,
    -12,
    "lobby-sample",
    "recordings-sample",
    "watched-sample",
)


def save_presence(call_id: str, record: PresenceRecord, now_ms: int) -> None:
    """Store what Prosody's events say about a call (every field of the record)."""
    values: dict[str, Any] = {
        **{f.name: getattr(record, f.name) for f in fields(record)},
        "updated_at": now_ms,
        "missing": record.missing.value if record.missing else None,
        "waiting_role": record.waiting_role.value if record.waiting_role else None,
        "lobby_visits": _compact(
            [
                {
                    "role": v.role.value,
                    "joined_at": v.joined_at,
                    "left_at": v.left_at,
                    "reason": v.reason.value if v.reason else None,
                    "repaired": v.repaired,
                }
                for v in record.lobby_visits
            ]
        ),
        "recordings": _compact([asdict(r) for r in record.recordings]),
        "watched_hosts": _watched_column(record.watched_hosts),
    }
    _SAVE_PRESENCE.execute(call_id, *(values[name] for name in PRESENCE_FIELDS))


def _watched_column(hosts: Sequence[str]) -> str | None:
    """video_calls.watched_hosts: the hosts space-separated, NULL for none."""
    return " ".join(hosts) or None


def watch(call_id: str, hosts: Sequence[str], stored: str | None) -> None:
    """Make the call's rows in call_hosts `hosts`, if they differ from what the call row
    says they are (`stored`: its watched_hosts before this derivation)."""
    if _watched_column(hosts) == stored:
        return
    CallHost.delete().where(CallHost.call_id == call_id).execute()
    if hosts:
        CallHost.insert_many([{"host": h, "call_id": call_id} for h in hosts]).execute()


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def doctor_stats(
    doctor_uid: str, date_from: str | None, date_to: str | None, *, verified_only: bool = False
) -> tuple[dict[str, int], tuple[int, int, float | None, float | None]]:
    """Counts per status, and (count, total, average) duration and the average patient wait
    of COMPLETED calls; `verified_only`: of the calls the server tracked (its measurement)."""
    base = VideoCall.select().where(VideoCall.doctor_uid == doctor_uid)
    if verified_only:
        base = base.where(VideoCall.tracked_by_server)
    if date_from is not None or date_to is not None:
        base = base.join(Appointment, on=(Appointment.id == VideoCall.appointment_id))
        if date_from is not None:
            base = base.where(Appointment.appointment_date >= date_from)
        if date_to is not None:
            base = base.where(Appointment.appointment_date <= date_to)
    grouped: Any = (
        base.select(VideoCall.status, peewee.fn.COUNT(VideoCall.id))
        .group_by(VideoCall.status)
        .tuples()
    )
    counts: dict[str, int] = {status: int(n) for status, n in grouped}
    total: Any = (
        base.select(
            peewee.fn.COUNT(VideoCall.id),
            peewee.fn.COALESCE(peewee.fn.SUM(VideoCall.duration), 0),
            peewee.fn.AVG(VideoCall.duration),
            peewee.fn.AVG(VideoCall.patient_wait),
        )
        .where(VideoCall.status == CallStatus.COMPLETED.value)
        .tuples()
        .get()
    )
    avg = float(total[2]) if total[2] is not None else None
    avg_wait = float(total[3]) if total[3] is not None else None
    return counts, (int(total[0]), int(total[1]), avg, avg_wait)


def forget_calls(appointment_ids: Sequence[str], room_names: Sequence[str]) -> int:
    """Delete these appointments' calls, their timelines and their rooms' Prosody events,
    so the next `initiate` starts from nothing (`seed-demo --reset`; the audit log stays)."""
    call_ids = [
        c.id
        for c in VideoCall.select(VideoCall.id).where(VideoCall.appointment_id.in_(appointment_ids))
    ]
    if call_ids:
        OccupantSession.delete().where(OccupantSession.call_id.in_(call_ids)).execute()
        CallHost.delete().where(CallHost.call_id.in_(call_ids)).execute()
        DerivationState.delete().where(DerivationState.call_id.in_(call_ids)).execute()
    SnapshotRoom.delete().where(SnapshotRoom.room_name.in_(room_names)).execute()
    ProsodyEvent.delete().where(ProsodyEvent.room_name.in_(room_names)).execute()
    return int(VideoCall.delete().where(VideoCall.id.in_(call_ids)).execute()) if call_ids else 0


def set_provisional(call_id: str, since: int | None) -> None:
    """Mark a settled call provisional from `since` (its decision), or final (None)."""
    VideoCall.update(provisional_since=since).where(VideoCall.id == call_id).execute()


def settle_provisional(through: int) -> int:
    """Provisional calls decided at or before `through` become final; returns how many."""
    updated: int = (
        VideoCall.update(provisional_since=None)
        .where(
            VideoCall.provisional_since.is_null(False) & (VideoCall.provisional_since <= through)
        )
        .execute()
    )
    return updated
