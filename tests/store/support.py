"""Rows for the store tests, written with the store's own functions."""

from __future__ import annotations

from typing import Any

from service.store import audit_guard, clinic, uow, video_calls
from service.store.db import current, is_postgres
from service.store.models import ALL_MODELS, Appointment, VideoCall


def reset_for_tests() -> None:
    """Empty every table (in the caller's connection: `uow.run(reset_for_tests)`)."""
    tables = [m._meta.table_name for m in ALL_MODELS]
    # The audit tables refuse deletion; the controlled way around it is the purge's.
    with audit_guard.lifted():
        database = current()
        if is_postgres(database):
            database.execute_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
        else:
            for table in tables:
                database.execute_sql(f"DELETE FROM {table}")  # noqa: S608 - fixed table names


def user_row(uid: str, at: int, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "uid": uid,
        "first_name": uid.title(),
        "last_name": "Test",
        "email": None,
        "profile_image_url": None,
        "is_active": True,
        "created_at": at,
        "updated_at": at,
    }
    row.update(fields)
    return row


def appointment_row(appointment_id: str, at: int, day: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": appointment_id,
        "doctor_uid": "doc",
        "patient_uid": "pat",
        "appointment_date": day,
        "start_time": "10:00",
        "end_time": "10:30",
        "timezone": "UTC",
        "status": "CONFIRMED",
        "ends_at": at,
        "created_at": at,
        "updated_at": at,
    }
    row.update(fields)
    return row


def call_for(appointment_id: str, at: int) -> VideoCall:
    """The appointment's call, created at `at` (the appointment must exist)."""
    stored = clinic.get_appointment(appointment_id)
    assert stored is not None
    call, created = video_calls.create_call_if_missing(stored, f"appointment_{appointment_id}", at)
    assert created
    return call


def appointment(appointment_id: str) -> Appointment:
    stored = clinic.get_appointment(appointment_id)
    assert stored is not None
    return stored


def sql_around_the_service(sql: str, params: tuple[object, ...] = ()) -> None:
    """A statement run as someone with the tables' owner rights would, past the audit guard
    (`?` stands for each parameter)."""
    with audit_guard.lifted():
        database = current()
        database.execute_sql(sql.replace("?", database.param), params)


def sql(statement: str) -> None:
    """A statement in a write transaction, as the service's own role runs it."""
    with uow.write():
        current().execute_sql(statement)
