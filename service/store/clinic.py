"""The clinic's users and appointments, as its directory pushes them (service/directory.py),
and an appointment's status.

Callers hold the connection and the transaction (store/uow.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import peewee

from service.domain.model import AppointmentStatus, room_name_for
from service.store.batches import chunks
from service.store.compiled import Compiled
from service.store.models import Appointment, User, VideoCall

_APPOINTMENT = Compiled(lambda i: Appointment.select().where(Appointment.id == i), "a")
_TWO_USERS = Compiled(lambda a, b: User.select().where(User.uid.in_([a, b])), "a", "b")


def get_appointment(appointment_id: str) -> Appointment | None:
    return _APPOINTMENT.first(Appointment, appointment_id)


def get_users(uids: Iterable[str]) -> dict[str, User]:
    wanted = list(set(uids))
    if not wanted:
        return {}
    if len(wanted) <= 2:  # a doctor and a patient: every request's lookup
        rows = _TWO_USERS.rows(User, wanted[0], wanted[-1])
    else:
        rows = list(User.select().where(User.uid.in_(wanted)))
    return {u.uid: u for u in rows}


def known_uids(uids: Iterable[str]) -> set[str]:
    """Which of `uids` are stored users (in chunks: an import may name thousands)."""
    wanted = sorted(set(uids))
    found: set[str] = set()
    for chunk in chunks(wanted):
        found.update(u.uid for u in User.select(User.uid).where(User.uid.in_(chunk)))
    return found


def get_appointments(ids: Iterable[str]) -> dict[str, Appointment]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    return {a.id: a for a in Appointment.select().where(Appointment.id.in_(wanted))}


def upsert_users(rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace users by uid (rows use column names; created_at kept on update)."""
    if not rows:
        return
    update = [f for f in User._meta.sorted_fields if f.name not in ("uid", "created_at")]
    for chunk in chunks(rows):
        (User.insert_many(chunk).on_conflict(conflict_target=[User.uid], preserve=update).execute())


def upsert_appointments(rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace appointments by id; a call follows a change of doctor or patient."""
    if not rows:
        return
    # The room's name is derived here, so no writer can store an appointment without it.
    rows = [{**row, "room_key": room_name_for(row["id"])} for row in rows]
    update = [f for f in Appointment._meta.sorted_fields if f.name not in ("id", "created_at")]
    try:
        for chunk in chunks(rows):
            (
                Appointment.insert_many(chunk)
                .on_conflict(conflict_target=[Appointment.id], preserve=update)
                .execute()
            )
    except peewee.IntegrityError:
        # Users are checked before (directory.require_known_users): the one constraint left
        # is the unique room_key, which a concurrent import of another case of an id took.
        raise RoomTaken from None
    for row in rows:
        (
            VideoCall.update(
                doctor_uid=row["doctor_uid"],
                patient_uid=row["patient_uid"],
                updated_at=row["updated_at"],
            )
            .where(
                (VideoCall.appointment_id == row["id"])
                & (
                    (VideoCall.doctor_uid != row["doctor_uid"])
                    | (VideoCall.patient_uid != row["patient_uid"])
                )
            )
            .execute()
        )


class RoomTaken(Exception):
    """Another appointment holds the Jitsi room one of these ids names (its id differs only
    in letter case), stored after the caller's check read (`room_owners`)."""


def room_owners(room_keys: Sequence[str]) -> dict[str, str]:
    """The id of the stored appointment holding each of these room names (if any)."""
    owners: dict[str, str] = {}
    for chunk in chunks(list(room_keys)):
        query: Any = (
            Appointment.select(Appointment.room_key, Appointment.id)
            .where(Appointment.room_key.in_(chunk))
            .tuples()
        )
        owners.update((key, appointment_id) for key, appointment_id in query)
    return owners


def set_appointment_status(
    appointment_id: str,
    status: AppointmentStatus,
    from_statuses: Iterable[AppointmentStatus],
    now_ms: int,
) -> bool:
    updated: int = (
        Appointment.update(status=status.value, updated_at=now_ms)
        .where(
            (Appointment.id == appointment_id)
            & (Appointment.status.in_([s.value for s in from_statuses]))
        )
        .execute()
    )
    return updated == 1
