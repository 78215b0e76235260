"""service.directory as Python functions: user and appointment upserts, the import, the
demo reset, and the end and start times it derives."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Any

import pytest

from harness.clock import local
from service import calls, directory
from service.config import Settings
from service.domain.model import Action
from service.errors import BadRequest, Conflict
from service.store.models import Appointment, AuditEvent, User, VideoCall
from tests.clock import DAY_MS, FrozenClock, appointment_around, shift_days
from tests.usecases.support import appointment, audits, read, user, write

pytestmark = pytest.mark.usefixtures("database_url")


def stored_user(uid: str) -> User:
    return read(lambda: User.get_by_id(uid))


def stored_appointment(appointment_id: str) -> Appointment:
    return read(lambda: Appointment.get_by_id(appointment_id))


def refused(code: str, fn: Any, *args: Any) -> str:
    with pytest.raises(BadRequest) as raised:
        fn(*args)
    assert raised.value.code == code
    return raised.value.message


def test_upsert_user_inserts_then_replaces_keeping_created_at(clock: FrozenClock) -> None:
    created = clock.ms
    row = directory.upsert_user(
        "u1", {"firstName": "Ada", "lastName": "L", "email": "ada@example.test"}
    )
    assert row == {
        "uid": "u1",
        "first_name": "Ada",
        "last_name": "L",
        "email": "ada@example.test",
        "profile_image_url": None,
        "is_active": True,
        "created_at": created,
        "updated_at": created,
    }
    updated = clock.advance(60_000)
    directory.upsert_user("u1", {"firstName": "Ada", "isActive": False, "unknown": 1})
    stored = stored_user("u1")
    assert (stored.first_name, stored.last_name, stored.email) == ("Ada", "", None)
    assert stored.is_active is False
    assert (stored.created_at, stored.updated_at) == (created, updated)
    assert audits("user.upserted") == [
        ("admin", None, None, {"uid": "u1"}),
        ("admin", None, None, {"uid": "u1"}),
    ]


def test_upsert_user_refuses_bad_input() -> None:
    refused("invalid_id", directory.upsert_user, "bad id", {"firstName": "A"})
    refused("invalid_id", directory.upsert_user, "x" * 129, {"firstName": "A"})
    refused("invalid_body", directory.upsert_user, "u1", ["firstName"])
    refused("invalid_body", directory.upsert_user, "u1", {"lastName": "no first name"})
    refused("invalid_body", directory.upsert_user, "u1", {"firstName": "A", "isActive": "yes"})
    assert read(lambda: User.select().count()) == 0
    assert read(lambda: AuditEvent.select().count()) == 0


def test_upsert_appointment_stores_its_end(clock: FrozenClock) -> None:
    user("doc")
    user("pat")
    window = appointment_around(clock.ms, zone="UTC", before_ms=0, after_ms=0)
    row = appointment(clock, "a1", **window)
    expected_end = int(
        datetime.fromisoformat(f"{window['appointmentDate']}T{window['endTime']}")
        .replace(tzinfo=UTC)
        .timestamp()
        * 1000
    )
    if window["endTime"] <= window["startTime"]:
        expected_end += DAY_MS
    assert row["ends_at"] == expected_end
    stored = stored_appointment("a1")
    assert (stored.doctor_uid, stored.patient_uid, stored.status) == ("doc", "pat", "CONFIRMED")
    assert (stored.timezone, stored.ends_at, stored.created_at) == ("UTC", expected_end, clock.ms)
    assert audits("appointment.upserted") == [("admin", None, "a1", {})]


def test_upsert_appointment_without_zone_is_utc(clock: FrozenClock) -> None:
    user("doc")
    user("pat")
    day = clock.day()
    body = {"appointmentDate": day, "startTime": "10:00", "endTime": "10:30"}
    row = appointment(clock, "a1", **body, timezone=None)
    assert row["timezone"] == "UTC"
    assert row["ends_at"] == directory.appointment_ends_at(day, "10:30", "10:00", "UTC")


def test_upsert_appointment_refuses_bad_input(clock: FrozenClock) -> None:
    user("doc")
    user("pat")

    def body(**fields: Any) -> dict[str, Any]:
        base = {
            "doctorUid": "doc",
            "patientUid": "pat",
            **appointment_around(clock.ms),
            "status": "CONFIRMED",
        }
        return {**base, **fields}

    upsert = directory.upsert_appointment
    refused("invalid_id", upsert, "a 1", body())
    refused("invalid_body", upsert, "a1", "not an object")
    refused("invalid_body", upsert, "a1", body(patientUid="doc"))
    refused("invalid_body", upsert, "a1", body(status="MAYBE"))
    refused("invalid_id", upsert, "a1", body(doctorUid="bad uid"))
    # February 30th of the clock's year: a date that exists in no year.
    no_such_day = f"{time.gmtime(clock.ms / 1000).tm_year}-02-30"
    refused("invalid_body", upsert, "a1", body(appointmentDate=no_such_day))
    zone = refused("invalid_body", upsert, "a1", body(timezone="Mars/Olympus"))
    assert zone == "timezone must be an IANA name such as Europe/Berlin"
    refused("invalid_body", upsert, "a1", body(timezone="America"))
    unknown = refused("unknown_user", upsert, "a1", body(patientUid="ghost"))
    assert unknown.startswith("Unknown user ghost:")
    assert read(lambda: Appointment.select().count()) == 0


def test_changing_the_patient_moves_the_call(settings: Settings, clock: FrozenClock) -> None:
    for uid in ("doc", "pat", "pat2"):
        user(uid)
    appointment(clock, "a1")
    grant = calls.initiate(settings, "doc", "a1")
    at = clock.advance(1_000)
    appointment(clock, "a1", patientUid="pat2")
    call = read(lambda: VideoCall.get_by_id(grant.call.id))
    assert (call.doctor_uid, call.patient_uid, call.updated_at) == ("doc", "pat2", at)
    assert calls.details("pat2", "a1").patient is not None


@pytest.mark.presence_from_clients
def test_cancelling_an_appointment_leaves_a_completed_call(
    settings: Settings, clock: FrozenClock
) -> None:
    user("doc")
    user("pat")
    appointment(clock, "a1")
    calls.initiate(settings, "doc", "a1")
    calls.report_status("doc", "a1", Action.JOIN)
    calls.report_status("pat", "a1", Action.JOIN)
    calls.report_status("doc", "a1", Action.END)
    appointment(clock, "a1", status="CANCELLED")
    assert calls.details("doc", "a1").call.status == "COMPLETED"
    assert stored_appointment("a1").status == "CANCELLED"


def records(clock: FrozenClock, **overrides: Any) -> dict[str, Any]:
    window = appointment_around(clock.ms)
    document: dict[str, Any] = {
        "users": [{"uid": "doc", "firstName": "Doc"}, {"uid": "pat", "firstName": "Pat"}],
        "appointments": [
            {"id": "a1", "doctorUid": "doc", "patientUid": "pat", "status": "CONFIRMED", **window},
            {"id": "a2", "doctorUid": "doc", "patientUid": "pat", "status": "PENDING", **window},
        ],
    }
    document.update(overrides)
    return document


def test_import_writes_users_before_their_appointments(clock: FrozenClock) -> None:
    assert directory.import_records(records(clock)) == (2, 2)
    assert read(lambda: sorted(u.uid for u in User.select())) == ["doc", "pat"]
    assert read(lambda: sorted((a.id, a.status) for a in Appointment.select())) == [
        ("a1", "CONFIRMED"),
        ("a2", "PENDING"),
    ]
    assert audits("records.imported") == [("import", None, None, {"users": 2, "appointments": 2})]


def test_import_keeps_the_last_occurrence_of_an_id(clock: FrozenClock) -> None:
    document = records(clock)
    document["users"].append({"uid": "doc", "firstName": "Later"})
    assert directory.import_records(document) == (2, 2)
    assert stored_user("doc").first_name == "Later"


def test_import_is_all_or_nothing(clock: FrozenClock) -> None:
    document = records(clock)
    document["appointments"][1]["patientUid"] = "doc"
    message = refused("invalid_body", directory.import_records, document)
    assert message == "appointments[1]: doctorUid and patientUid must differ"
    unknown = records(clock, users=[{"uid": "doc", "firstName": "Doc"}])
    refused("unknown_user", directory.import_records, unknown)
    refused("invalid_body", directory.import_records, [])
    refused("invalid_body", directory.import_records, records(clock, users="doc"))
    shapeless = records(clock, users=[{"uid": 7}])
    assert refused("invalid_body", directory.import_records, shapeless) == (
        "users[0] must be an object with a string uid"
    )
    assert read(lambda: User.select().count()) == 0
    assert read(lambda: Appointment.select().count()) == 0


def test_import_refuses_ids_that_would_share_a_room(settings: Settings, clock: FrozenClock) -> None:
    """Jitsi lower-cases room names: `CaseAppt` and `caseappt` would share one room, and the
    second `initiate` was a 500. Refused in one document, and against stored appointments."""
    both = records(clock)
    both["appointments"][0]["id"] = "CaseAppt"
    both["appointments"][1]["id"] = "caseappt"
    with pytest.raises(Conflict) as raised:
        directory.import_records(both)
    assert (raised.value.status, raised.value.code) == (409, "room_conflict")
    assert read(lambda: Appointment.select().count()) == 0

    first = records(clock)
    first["appointments"][0]["id"] = "CaseAppt"
    directory.import_records(first)
    later = records(clock)
    later["appointments"][0]["id"] = "CASEAPPT"
    with pytest.raises(Conflict) as raised:
        directory.import_records(later)
    assert raised.value.code == "room_conflict"
    with pytest.raises(Conflict):
        directory.upsert_appointment("caseAppt", later["appointments"][0])
    assert read(lambda: sorted(a.id for a in Appointment.select())) == ["CaseAppt", "a2"]
    # Importing the stored one again is no conflict with itself.
    assert directory.import_records(first) == (2, 2)
    assert calls.initiate(settings, "doc", "CaseAppt").call.room_name == "appointment_caseappt"


def test_initiate_refuses_a_case_twin_stored_before_the_rule(
    settings: Settings, clock: FrozenClock
) -> None:
    """Migration 0011 leaves the twins that do not own their room without a room key: their
    initiate is a 409 room_conflict, never the 500 of a failed insert."""
    directory.import_records(records(clock))
    write(lambda: Appointment.update(room_key=None).where(Appointment.id == "a1").execute())
    with pytest.raises(Conflict) as raised:
        calls.initiate(settings, "doc", "a1")
    assert raised.value.code == "room_conflict"
    assert read(lambda: VideoCall.select().count()) == 0


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("javascript:alert(4)", "invalid_body"),
        ("http://images.example.test/a.png", "invalid_body"),
        ("https://", "invalid_body"),
    ],
)
def test_import_refuses_profile_images_that_are_not_https(
    clock: FrozenClock, url: str, code: str
) -> None:
    document = records(clock)
    document["users"][0]["profileImageUrl"] = url
    message = refused(code, directory.import_records, document)
    assert message.startswith("users[0]: profileImageUrl must be an https:// URL")
    assert read(lambda: User.select().count()) == 0


def test_import_of_a_cancelled_appointment_cancels_its_call(
    settings: Settings, clock: FrozenClock
) -> None:
    directory.import_records(records(clock))
    grant = calls.initiate(settings, "pat", "a1")
    document = records(clock)
    document["appointments"][0]["status"] = "CANCELLED"
    directory.import_records(document)
    assert read(lambda: VideoCall.get_by_id(grant.call.id).status) == "CANCELLED"
    assert audits("call.transition") == [
        (
            "import",
            grant.call.id,
            "a1",
            {"from": "SCHEDULED", "to": "CANCELLED", "cause": "appointment_cancelled"},
        )
    ]


def test_reset_demo_forgets_the_demo_calls(settings: Settings, clock: FrozenClock) -> None:
    today = date.fromisoformat(clock.day())
    assert directory.reset_demo(today) == 0
    assert read(lambda: Appointment.select().count()) == 5
    grant = calls.initiate(settings, "demo-doctor", "demo-appt-1")
    calls.report_status("demo-doctor", "demo-appt-1", Action.CANCEL)
    assert directory.reset_demo(today) == 1
    assert read(lambda: VideoCall.select().count()) == 0
    assert audits("demo.reset")[-1][3] == {"calls": 1}
    assert calls.initiate(settings, "demo-patient-1", "demo-appt-1").call.id != grant.call.id


def test_demo_records_are_dated_today(clock: FrozenClock) -> None:
    today = date.fromisoformat(clock.day())
    document = directory.demo_records(today)
    assert [u["uid"] for u in document["users"]] == [
        "demo-doctor",
        "demo-patient-1",
        "demo-patient-2",
    ]
    assert {a["appointmentDate"] for a in document["appointments"]} == {today.isoformat()}
    assert [a["status"] for a in document["appointments"]] == [
        "CONFIRMED",
        "CONFIRMED",
        "PENDING",
        "COMPLETED",
        "CANCELLED",
    ]


def test_end_and_start_times(clock: FrozenClock) -> None:
    day = clock.day("Europe/Berlin")
    start = directory.appointment_starts_at(day, "22:00", "Europe/Berlin")
    same_day = directory.appointment_ends_at(day, "23:00", "22:00", "Europe/Berlin")
    assert same_day - start == 3_600_000
    next_day = directory.appointment_ends_at(day, "01:00", "22:00", "Europe/Berlin")
    local_end = local(next_day, "Europe/Berlin")
    assert (local_end.date().isoformat(), local_end.strftime("%H:%M")) == (
        shift_days(day, 1),
        "01:00",
    )
    whole_day = directory.appointment_ends_at(day, "09:00", "09:00", "UTC")
    assert whole_day - directory.appointment_starts_at(day, "09:00", "UTC") == DAY_MS
