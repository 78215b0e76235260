"""Users and appointments pushed by the clinic's main backend (admin API and `import`).

The backend owns these records; the service keeps a copy to authorise participants, name
them in tokens, and know when an appointment ends. Upserts are idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.calls import follow_cancelled_appointment
from service.clock import now_ms
from service.domain.model import AppointmentStatus
from service.errors import BadRequest
from service.store import db, repo

# ASCII only, matched whole (fullmatch: `$` would also accept a trailing newline).
ID_PATTERN = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
TIME_PATTERN = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _text(data: Mapping[str, Any], key: str, *, required: bool, max_len: int) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise BadRequest(f"{key} is required", "invalid_body")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string", "invalid_body")
    if len(value) > max_len:
        raise BadRequest(f"{key} is longer than {max_len} characters", "invalid_body")
    if required and not value.strip():
        raise BadRequest(f"{key} must not be empty", "invalid_body")
    if "\x00" in value:
        raise BadRequest(f"{key} must not contain NUL characters", "invalid_body")
    return value


def check_id(value: str, what: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise BadRequest(
            f"{what} must be 1-128 characters of letters, digits and _.:@-", "invalid_id"
        )
    return value


def user_row(uid: str, data: Mapping[str, Any], at: int) -> dict[str, Any]:
    """Validate a camelCase user body into a users row."""
    if not isinstance(data, Mapping):
        raise BadRequest("Body must be a JSON object", "invalid_body")
    check_id(uid, "uid")
    active = data.get("isActive", True)
    if not isinstance(active, bool):
        raise BadRequest("isActive must be true or false", "invalid_body")
    return {
        "uid": uid,
        "first_name": _text(data, "firstName", required=True, max_len=200),
        "last_name": _text(data, "lastName", required=False, max_len=200) or "",
        "email": _text(data, "email", required=False, max_len=320),
        "profile_image_url": _text(data, "profileImageUrl", required=False, max_len=2048),
        "is_active": active,
        "created_at": at,
        "updated_at": at,
    }


def appointment_ends_at(day: str, end_time: str, start_time: str, timezone: str) -> int:
    """The appointment's end as epoch ms; an end before the start crosses midnight."""
    zone = ZoneInfo(timezone)
    local_day = date.fromisoformat(day)
    end = datetime.combine(local_day, time.fromisoformat(end_time), tzinfo=zone)
    if end_time <= start_time:
        end += timedelta(days=1)
    return int(end.timestamp() * 1000)


def appointment_starts_at(day: str, start_time: str, timezone: str) -> int:
    """The appointment's start as epoch ms (the console orders and groups a day by it)."""
    start = datetime.combine(
        date.fromisoformat(day), time.fromisoformat(start_time), tzinfo=ZoneInfo(timezone)
    )
    return int(start.timestamp() * 1000)


def appointment_row(appointment_id: str, data: Mapping[str, Any], at: int) -> dict[str, Any]:
    """Validate a camelCase appointment body into an appointments row."""
    if not isinstance(data, Mapping):
        raise BadRequest("Body must be a JSON object", "invalid_body")
    check_id(appointment_id, "id")
    doctor = check_id(_text(data, "doctorUid", required=True, max_len=128) or "", "doctorUid")
    patient = check_id(_text(data, "patientUid", required=True, max_len=128) or "", "patientUid")
    if doctor == patient:
        raise BadRequest("doctorUid and patientUid must differ", "invalid_body")
    day = _text(data, "appointmentDate", required=True, max_len=10) or ""
    try:
        if not DATE_PATTERN.fullmatch(day):
            raise ValueError
        date.fromisoformat(day)
    except ValueError:
        raise BadRequest("appointmentDate must be YYYY-MM-DD", "invalid_body") from None
    start = _text(data, "startTime", required=True, max_len=5) or ""
    end = _text(data, "endTime", required=True, max_len=5) or ""
    for key, value in (("startTime", start), ("endTime", end)):
        if not TIME_PATTERN.fullmatch(value):
            raise BadRequest(f"{key} must be HH:MM (24-hour)", "invalid_body")
    timezone = _text(data, "timezone", required=False, max_len=64) or "UTC"
    try:
        ends_at = appointment_ends_at(day, end, start, timezone)
    except (ZoneInfoNotFoundError, ValueError, OverflowError, OSError):
        # OSError: a folder of the zone database ("America") is not a zone.
        raise BadRequest(
            "timezone must be an IANA name such as Europe/Berlin", "invalid_body"
        ) from None
    raw_status = _text(data, "status", required=True, max_len=16) or ""
    try:
        status = AppointmentStatus(raw_status)
    except ValueError:
        allowed = ", ".join(s.value for s in AppointmentStatus)
        raise BadRequest(f"status must be one of {allowed}", "invalid_body") from None
    return {
        "id": appointment_id,
        "doctor_uid": doctor,
        "patient_uid": patient,
        "appointment_date": day,
        "start_time": start,
        "end_time": end,
        "timezone": timezone,
        "status": status.value,
        "ends_at": ends_at,
        "created_at": at,
        "updated_at": at,
    }


def upsert_user(uid: str, data: Mapping[str, Any]) -> dict[str, Any]:
    row = user_row(uid, data, now_ms())

    def work() -> None:
        with db.write_transaction():
            repo.upsert_users([row])
            repo.audit("admin", "user.upserted", row["updated_at"], detail={"uid": uid})

    db.run(work)
    return row


def upsert_appointment(appointment_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    row = appointment_row(appointment_id, data, now_ms())

    def work() -> None:
        with db.write_transaction():
            repo.upsert_appointments([row])
            repo.audit("admin", "appointment.upserted", row["updated_at"], None, appointment_id)
            if row["status"] == AppointmentStatus.CANCELLED.value:
                follow_cancelled_appointment(appointment_id, "admin", row["updated_at"])

    db.run(work)
    return row


def import_records(document: Any) -> tuple[int, int]:
    """Validate everything first, then write it all in one transaction (all or nothing)."""
    if not isinstance(document, Mapping):
        raise BadRequest(
            'The file must hold {"users": [...], "appointments": [...]}', "invalid_body"
        )
    at = now_ms()
    users = _rows(document.get("users", []), "users", "uid", user_row, at)
    appointments = _rows(
        document.get("appointments", []), "appointments", "id", appointment_row, at
    )

    def work() -> None:
        with db.write_transaction():
            repo.upsert_users(users)
            repo.upsert_appointments(appointments)
            repo.audit(
                "import",
                "records.imported",
                at,
                detail={"users": len(users), "appointments": len(appointments)},
            )
            for row in appointments:
                if row["status"] == AppointmentStatus.CANCELLED.value:
                    follow_cancelled_appointment(row["id"], "import", at)

    db.run(work)
    return len(users), len(appointments)


def _rows(items: Any, name: str, key: str, build: Any, at: int) -> list[dict[str, Any]]:
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise BadRequest(f"{name} must be a list", "invalid_body")
    rows: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get(key), str):
            raise BadRequest(
                f"{name}[{index}] must be an object with a string {key}", "invalid_body"
            )
        try:
            rows[item[key]] = build(item[key], item, at)
        except BadRequest as exc:
            raise BadRequest(f"{name}[{index}]: {exc.message}", exc.code) from None
    # The last occurrence of an id wins, as it would with sequential upserts.
    return list(rows.values())


def demo_records(today: date) -> dict[str, Any]:
    """A doctor, two patients, and appointments in several statuses (for `make run`)."""
    day = today.isoformat()
    people = [
        {
            "uid": "demo-doctor",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "email": "doctor@example.com",
        },
        {
            "uid": "demo-patient-1",
            "firstName": "Alan",
            "lastName": "Turing",
            "email": "patient1@example.com",
        },
        {
            "uid": "demo-patient-2",
            "firstName": "Grace",
            "lastName": "Hopper",
            "email": "patient2@example.com",
        },
    ]

    def appointment(n: int, patient: str, start: str, end: str, status: str) -> dict[str, Any]:
        return {
            "id": f"demo-appt-{n}",
            "doctorUid": "demo-doctor",
            "patientUid": patient,
            "appointmentDate": day,
            "startTime": start,
            "endTime": end,
            "timezone": "UTC",
            "status": status,
        }

    return {
        "users": people,
        "appointments": [
            appointment(1, "demo-patient-1", "00:00", "23:59", "CONFIRMED"),
            appointment(2, "demo-patient-2", "00:00", "23:59", "CONFIRMED"),
            appointment(3, "demo-patient-1", "09:00", "09:30", "PENDING"),
            appointment(4, "demo-patient-2", "08:00", "08:30", "COMPLETED"),
            appointment(5, "demo-patient-1", "07:00", "07:30", "CANCELLED"),
        ],
    }
