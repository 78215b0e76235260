"""Users and appointments pushed by the clinic's main backend (admin API and `import`).

The backend owns these records; the service keeps a copy to authorise participants, name
them in tokens, and know when an appointment ends. Upserts are idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.clock import now_ms
from service.domain.model import AppointmentStatus, room_name_for
from service.errors import BadRequest, Conflict
from service.fields import APPOINTMENT_ID_PATTERN, ID_PATTERN, ID_RULE, MAX_ID_CHARS, is_https_url
from service.operators import ADMIN, Who
from service.requests import AppointmentUpsert, UserUpsert, decode
from service.store import audit_log, clinic, uow, video_calls
from service.transitions import follow_cancelled_appointment


def check_id(value: str, what: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise BadRequest(f"{what} must be {ID_RULE}", "invalid_id")
    return value


def check_appointment_id(value: str) -> str:
    """An appointment id names a Jitsi room, so its alphabet is narrower than a uid's."""
    if not APPOINTMENT_ID_PATTERN.fullmatch(value):
        raise BadRequest(
            f"id must be 1-{MAX_ID_CHARS} characters of letters, digits, _ and - "
            "(it names the Jitsi room)",
            "invalid_id",
        )
    return value


def _room_conflict(first: str, second: str) -> Conflict:
    return Conflict(
        f"Appointment ids {first} and {second} differ only in letter case: they would share "
        f"the Jitsi room {room_name_for(first)}",
        "room_conflict",
    )


def _check_rooms(rows: Sequence[Mapping[str, Any]]) -> None:
    """Two appointments whose room names differ only in case would share one Jitsi room (it
    lower-cases names): refuse them, within `rows` and against the stored appointments. Runs
    inside the write transaction; the unique room_key index settles a race (see _upsert)."""
    owners: dict[str, str] = {}
    for row in rows:
        room = room_name_for(row["id"])
        if owners.setdefault(room, row["id"]) != row["id"]:
            raise _room_conflict(owners[room], row["id"])
    for room, stored in clinic.room_owners(list(owners)).items():
        if stored != owners[room]:
            raise _room_conflict(stored, owners[room])


def _upsert(rows: Sequence[dict[str, Any]]) -> None:
    _check_rooms(rows)
    try:
        clinic.upsert_appointments(rows)
    except clinic.RoomTaken:
        # A concurrent import stored another case of one of these ids after _check_rooms read.
        raise Conflict(
            "Another appointment whose id differs only in letter case was stored at the same "
            "time: the two would share a Jitsi room",
            "room_conflict",
        ) from None


def _mapping(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise BadRequest("Body must be a JSON object", "invalid_body")
    return data


def user_row(uid: str, data: Mapping[str, Any], at: int) -> dict[str, Any]:
    """Validate a camelCase user body (requests.UserUpsert) into a users row."""
    check_id(uid, "uid")
    data = _mapping(data)
    url = data.get("profileImageUrl")
    if isinstance(url, str) and not is_https_url(url):
        raise BadRequest(
            "profileImageUrl must be an https:// URL (it becomes the avatar in Jitsi tokens)",
            "invalid_body",
        )
    body = decode(UserUpsert, data, "invalid_body")
    return {
        "uid": uid,
        "first_name": body.first_name,
        "last_name": body.last_name or "",
        "email": body.email,
        "profile_image_url": body.profile_image_url,
        "is_active": body.is_active,
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
    """Validate a camelCase appointment body (requests.AppointmentUpsert) into a row."""
    check_appointment_id(appointment_id)
    body = decode(
        AppointmentUpsert,
        _mapping(data),
        "invalid_body",
        {("doctorUid", "value"): "invalid_id", ("patientUid", "value"): "invalid_id"},
    )
    if body.doctor_uid == body.patient_uid:
        raise BadRequest("doctorUid and patientUid must differ", "invalid_body")
    try:
        date.fromisoformat(body.appointment_date)
    except ValueError:
        raise BadRequest("appointmentDate must be a calendar date", "invalid_body") from None
    timezone = body.timezone or "UTC"
    try:
        ends_at = appointment_ends_at(
            body.appointment_date, body.end_time, body.start_time, timezone
        )
    except (ZoneInfoNotFoundError, ValueError, OverflowError, OSError):
        # OSError: a folder of the zone database ("America") is not a zone.
        raise BadRequest(
            "timezone must be an IANA name such as Europe/Berlin", "invalid_body"
        ) from None
    return {
        "id": appointment_id,
        "doctor_uid": body.doctor_uid,
        "patient_uid": body.patient_uid,
        "appointment_date": body.appointment_date,
        "start_time": body.start_time,
        "end_time": body.end_time,
        "timezone": timezone,
        "status": body.status.value,
        "ends_at": ends_at,
        "created_at": at,
        "updated_at": at,
    }


def require_known_users(appointments: Sequence[Mapping[str, Any]], also: set[str]) -> None:
    """An appointment for a user the service has never been told about would answer a
    misleading 403 `account_inactive` at `initiate`; refuse it here, naming the user.
    Runs inside the write transaction, so the users it checks are the ones it commits with."""
    named = {row[key] for row in appointments for key in ("doctor_uid", "patient_uid")}
    missing = sorted(named - also - clinic.known_uids(named - also))
    if missing:
        raise BadRequest(
            f"Unknown user {missing[0]}: push the user first "
            f"(PUT /api/admin/users/{missing[0]}, or list it in the import's users)",
            "unknown_user",
        )


def upsert_user(uid: str, data: Mapping[str, Any], who: Who = ADMIN) -> dict[str, Any]:
    row = user_row(uid, data, now_ms())

    with uow.write():
        clinic.upsert_users([row])
        audit_log.audit(
            who.actor, "user.upserted", row["updated_at"], detail={"uid": uid}, address=who.address
        )
    return row


def upsert_appointment(
    appointment_id: str, data: Mapping[str, Any], who: Who = ADMIN
) -> dict[str, Any]:
    row = appointment_row(appointment_id, data, now_ms())

    with uow.write():
        require_known_users([row], set())
        _upsert([row])
        audit_log.audit(
            who.actor,
            "appointment.upserted",
            row["updated_at"],
            None,
            appointment_id,
            address=who.address,
        )
        if row["status"] == AppointmentStatus.CANCELLED.value:
            follow_cancelled_appointment(appointment_id, who.actor, row["updated_at"])
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

    with uow.write():
        require_known_users(appointments, {row["uid"] for row in users})
        clinic.upsert_users(users)
        _upsert(appointments)
        audit_log.audit(
            "import",
            "records.imported",
            at,
            detail={"users": len(users), "appointments": len(appointments)},
        )
        for row in appointments:
            if row["status"] == AppointmentStatus.CANCELLED.value:
                follow_cancelled_appointment(row["id"], "import", at)
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


def reset_demo(today: date) -> int:
    """Load the demo records again and forget their calls: the demo is back as new."""
    document = demo_records(today)
    ids = [a["id"] for a in document["appointments"]]

    with uow.write():
        forgotten = video_calls.forget_calls(ids, [room_name_for(i) for i in ids])
        audit_log.audit("seed-demo", "demo.reset", now_ms(), detail={"calls": forgotten})
    import_records(document)
    return forgotten


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
