"""The call lists (GET /api/video-calls, the operators' list): a page of calls with their
appointments and users, one statement per index range, rendered once and read as tuples.

A page used to be five statements that peewee rendered on every request (two range scans,
then the appointments and the users by `IN`): half of its time went into building SQL and a
third into model instances. Now each range scan joins what the page shows.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import peewee

from service.domain.model import CallStatus
from service.store.compiled import Compiled
from service.store.models import Appointment, User, VideoCall
from service.store.rows import AppointmentRecord, CallRecord, UserRecord


@dataclass(frozen=True)
class Cursor:
    created_at: int
    id: str


Listed = tuple[CallRecord, AppointmentRecord, UserRecord | None, UserRecord | None]

_DOCTOR = User.alias("doctor")
_PATIENT = User.alias("patient")
_BRANCHES = {"doctor": VideoCall.doctor_uid, "patient": VideoCall.patient_uid, None: None}


def _layout(record: type[Any], model: type[peewee.Model]) -> tuple[type[Any], int, list[int]]:
    """(record class, column count, indexes of its boolean columns): SQLite returns 0/1."""
    columns = model._meta.sorted_fields
    assert [f.name for f in columns] == [f.name for f in fields(record)]
    booleans = [i for i, f in enumerate(columns) if isinstance(f, peewee.BooleanField)]
    return record, len(columns), booleans


_LAYOUT = (
    _layout(CallRecord, VideoCall),
    _layout(AppointmentRecord, Appointment),
    _layout(UserRecord, User),
    _layout(UserRecord, User),
)


def _compiled(branch: str | None, status: bool, cursor: bool) -> Compiled:
    column = _BRANCHES[branch]

    def build(*values: Any) -> peewee.ModelSelect[VideoCall]:
        rest = list(values)
        query = (
            VideoCall.select(VideoCall, Appointment, _DOCTOR, _PATIENT)
            .join(Appointment, on=(Appointment.id == VideoCall.appointment_id))
            .join_from(
                VideoCall, _DOCTOR, peewee.JOIN.LEFT_OUTER, on=(VideoCall.doctor_uid == _DOCTOR.uid)
            )
            .join_from(
                VideoCall,
                _PATIENT,
                peewee.JOIN.LEFT_OUTER,
                on=(VideoCall.patient_uid == _PATIENT.uid),
            )
        )
        if column is not None:
            query = query.where(column == rest.pop(0))
        if status:
            query = query.where(VideoCall.status == rest.pop(0))
        if cursor:
            # Row-value comparison keeps the keyset condition on the index's leading columns.
            created_at, call_id = rest.pop(0), rest.pop(0)
            query = query.where(
                peewee.Tuple(VideoCall.created_at, VideoCall.id) < (created_at, call_id)
            )
        ordered = query.order_by(VideoCall.created_at.desc(), VideoCall.id.desc())
        return ordered.limit(rest.pop(0))

    samples: list[Any] = ["u"] if column is not None else []
    samples += ["s"] if status else []
    samples += [-1, "i"] if cursor else []
    return Compiled(build, *samples, -2)


_QUERIES = {
    (branch, status, cursor): _compiled(branch, status, cursor)
    for branch in _BRANCHES
    for status in (False, True)
    for cursor in (False, True)
}


def _decoded(row: tuple[Any, ...]) -> Listed:
    parts: list[Any] = []
    start = 0
    for record, count, booleans in _LAYOUT:
        values = list(row[start : start + count])
        start += count
        for index in booleans:
            if values[index] is not None:
                values[index] = bool(values[index])
        # A user left out by the outer join comes back as all NULLs.
        parts.append(None if values[0] is None else record(*values))
    call, appointment, doctor, patient = parts
    return call, appointment, doctor, patient


def _page(
    branch: str | None,
    uid: str | None,
    status: CallStatus | None,
    cursor: Cursor | None,
    limit: int,
) -> list[Listed]:
    args: list[Any] = [uid] if branch is not None else []
    args += [status.value] if status is not None else []
    args += [cursor.created_at, cursor.id] if cursor is not None else []
    query = _QUERIES[(branch, status is not None, cursor is not None)]
    return [_decoded(row) for row in query.execute(*args, limit).fetchall()]


def for_user(
    uid: str, status: CallStatus | None, cursor: Cursor | None, limit: int
) -> list[Listed]:
    """Newest first. Two index range scans (as doctor, as patient) merged: cheaper than OR."""
    rows = [
        *_page("doctor", uid, status, cursor, limit),
        *_page("patient", uid, status, cursor, limit),
    ]
    unique = {listed[0].id: listed for listed in rows}
    ordered = sorted(unique.values(), key=lambda r: (r[0].created_at, r[0].id), reverse=True)
    return ordered[:limit]


def by_status(status: CallStatus | None, cursor: Cursor | None, limit: int) -> list[Listed]:
    return _page(None, None, status, cursor, limit)
