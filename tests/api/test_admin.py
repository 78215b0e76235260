"""The clinic backend's upserts and the operators' call list, behind ADMIN_API_KEY."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from service import operators
from service.app import create_app
from service.config import Settings, load_settings
from service.store import clinic, uow
from service.store.models import Appointment, AuditEvent, User, VideoCall
from tests.api.conftest import Api
from tests.clock import DAY_MS, appointment_around


def test_user_upsert_is_idempotent_and_replaces(api: Api) -> None:
    body = {
        "firstName": "Jane",
        "lastName": "Smith",
        "email": "jane@example.test",
        "isActive": True,
    }
    for _ in range(2):
        response = api.client.put("/api/admin/users/pat9", json=body, headers=api.admin())
        assert response.status_code == 200
        assert response.json()["user"] == {**body, "uid": "pat9", "profileImageUrl": None}
    body["lastName"] = "Doe"
    api.client.put("/api/admin/users/pat9", json=body, headers=api.admin())
    users = uow.run(lambda: list(User.select()))
    assert [(u.uid, u.last_name) for u in users] == [("pat9", "Doe")]


def test_appointment_upsert_computes_its_end_in_its_time_zone(api: Api) -> None:
    # Upserted in winter or summer for a day in July: the end is read in the zone's summer
    # time (UTC+2 in Berlin), not in the offset of the day the request arrives.
    july = int(api.clock.day()[:4]) + 1
    api.put_user("d")
    api.put_user("p")
    body = {
        "doctorUid": "d",
        "patientUid": "p",
        "appointmentDate": f"{july}-07-01",
        "startTime": "23:30",
        "endTime": "00:15",
        "timezone": "Europe/Berlin",
        "status": "CONFIRMED",
    }
    response = api.client.put("/api/admin/appointments/x1", json=body, headers=api.admin())
    assert response.status_code == 200
    assert response.json()["appointment"] == {**body, "id": "x1"}
    stored = uow.run(lambda: Appointment.get_by_id("x1"))
    # 00:15 the next day in Berlin is 22:15 UTC on July 1st.
    assert stored.ends_at == int(datetime(july, 7, 1, 22, 15, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    "body",
    [
        {"firstName": 3},
        {"lastName": "x"},
        {"firstName": "A", "isActive": "yes"},
        {"firstName": "A", "email": "x" * 400},
    ],
)
def test_user_upsert_validates(api: Api, body: dict[str, object]) -> None:
    response = api.client.put("/api/admin/users/u1", json=body, headers=api.admin())
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_body"
    assert uow.run(lambda: User.select().count()) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"status": "SOMETHING"},
        {"appointmentDate": "24/11/2026"},
        {"startTime": "25:00"},
        {"timezone": "Mars/Olympus"},
        {"patientUid": "doc"},
        {"doctorUid": None},
    ],
)
def test_appointment_upsert_validates(api: Api, change: dict[str, object]) -> None:
    body = {
        "doctorUid": "doc",
        "patientUid": "pat",
        **appointment_around(api.clock.ms),
        "status": "CONFIRMED",
        **change,
    }
    response = api.client.put("/api/admin/appointments/a1", json=body, headers=api.admin())
    assert response.status_code == 400, response.text
    assert uow.run(lambda: Appointment.select().count()) == 0


def test_bad_ids_are_refused(api: Api) -> None:
    response = api.client.put(
        "/api/admin/users/has%20space", json={"firstName": "A"}, headers=api.admin()
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_id"


def test_admin_key_is_required_and_checked(api: Api) -> None:
    url = "/api/admin/users/u1"
    missing = api.client.put(url, json={"firstName": "A"})
    assert missing.status_code == 401 and missing.json()["error"] == "missing_token"
    wrong = api.client.put(url, json={"firstName": "A"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["error"] == "invalid_admin_key"
    # A Firebase user's token is not an admin key.
    user = api.client.get("/api/admin/video-calls", headers=api.auth("doc"))
    assert user.status_code == 403


def test_admin_api_is_off_without_a_key(env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "ADMIN_API_KEY"}
    settings: Settings = load_settings(env)
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/admin/video-calls", headers={"Authorization": "Bearer x"})
    assert response.status_code == 404
    assert response.json()["error"] == "admin_api_disabled"


@pytest.mark.presence_from_clients
def test_operators_list_calls_by_status(seeded: Api) -> None:
    for n in range(3):
        seeded.put_appointment(f"b{n}")
        seeded.initiate("doc", f"b{n}")
    seeded.report("doc", "b0", "join")
    seeded.report("pat", "b0", "join")
    seeded.report("doc", "b1", "join")
    seeded.report("pat", "b1", "join")
    active = seeded.client.get(
        "/api/admin/video-calls",
        params={"status": "IN_PROGRESS", "limit": "1"},
        headers=seeded.admin(),
    ).json()
    assert active["count"] == 1
    assert active["nextCursor"] is not None
    rest = seeded.client.get(
        "/api/admin/video-calls",
        params={"status": "IN_PROGRESS", "cursor": active["nextCursor"]},
        headers=seeded.admin(),
    ).json()
    found = {c["appointmentId"] for c in active["videoCalls"] + rest["videoCalls"]}
    assert found == {"b0", "b1"}
    assert rest["nextCursor"] is None
    everything = seeded.client.get("/api/admin/video-calls", headers=seeded.admin()).json()
    assert everything["count"] == 3


def test_doctor_change_follows_into_the_call(seeded: Api) -> None:
    seeded.put_user("doc2")
    seeded.initiate("doc", "appt1")
    seeded.put_appointment("appt1", doctorUid="doc2")
    assert seeded.initiate("doc", "appt1").status_code == 403
    assert seeded.initiate("doc2", "appt1").json()["userRole"] == "doctor"


@pytest.mark.presence_from_clients
def test_cancelling_the_appointment_cancels_a_call_not_yet_started(seeded: Api) -> None:
    from service import sweeper

    past = appointment_around(seeded.clock.ms - 30 * DAY_MS, "UTC")
    seeded.put_appointment("c1", **past)
    seeded.put_appointment("c2", **past)
    seeded.initiate("doc", "c1")
    seeded.initiate("doc", "c2")
    seeded.report("doc", "c2", "join")
    seeded.report("pat", "c2", "join")
    seeded.put_appointment("c1", **past, status="CANCELLED")
    seeded.put_appointment("c2", **past, status="CANCELLED")
    calls = {c.appointment_id: c.status for c in uow.run(lambda: list(VideoCall.select()))}
    assert calls["c1"] == "CANCELLED"
    assert calls["c2"] == "IN_PROGRESS"  # a call under way is not cut off by the backend
    # Long after the appointment: a cancelled appointment is not a no-show.
    assert sweeper.sweep(seeded.settings).no_shows == 0


@pytest.mark.parametrize("field", ["doctorUid", "patientUid"])
def test_an_appointment_naming_an_unknown_user_is_refused(seeded: Api, field: str) -> None:
    body = {"doctorUid": "doc", "patientUid": "pat", **appointment_around(seeded.clock.ms)}
    body.update({"status": "CONFIRMED", field: "nobody-yet"})
    response = seeded.client.put(
        "/api/admin/appointments/appt-new", json=body, headers=seeded.admin()
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "unknown_user"
    assert "nobody-yet" in response.json()["message"]
    assert uow.run(lambda: clinic.get_appointment("appt-new")) is None


def named_keys(settings: Settings) -> tuple[Settings, str, str]:
    """Settings with ADMIN_API_KEYS: alice (read-write) and reception (read-only)."""
    alice, reception = os.urandom(24).hex(), os.urandom(24).hex()
    entries = (
        f"alice:rw:{operators.digest(alice).hex()},reception:ro:{operators.digest(reception).hex()}"
    )
    return (
        replace(settings, admin_keys=operators.parse(entries, settings.admin_api_key)),
        alice,
        reception,
    )


def test_each_admin_change_is_audited_under_the_operators_name_and_address(
    settings: Settings,
) -> None:
    named, alice, reception = named_keys(settings)
    with TestClient(create_app(named), client=("198.51.100.7", 50000)) as client:
        body = {"firstName": "Jane", "lastName": "Smith"}
        as_alice = client.put(
            "/api/admin/users/pat1", json=body, headers={"Authorization": f"Bearer {alice}"}
        )
        assert as_alice.status_code == 200
        legacy = client.put(
            "/api/admin/users/pat2",
            json=body,
            headers={"Authorization": f"Bearer {settings.admin_api_key}"},
        )
        assert legacy.status_code == 200
        refused = client.put(
            "/api/admin/users/pat3", json=body, headers={"Authorization": f"Bearer {reception}"}
        )
        assert refused.status_code == 403
        assert refused.json()["error"] == "read_only_admin_key"
        # A read-only key reads.
        listed = client.get(
            "/api/admin/video-calls", headers={"Authorization": f"Bearer {reception}"}
        )
        assert listed.status_code == 200
    upserts = uow.run(
        lambda: [
            (e.actor, e.address, e.detail)
            for e in AuditEvent.select()
            .where(AuditEvent.action == "user.upserted")
            .order_by(AuditEvent.seq)
        ]
    )
    assert upserts == [
        ("alice", "198.51.100.7", '{"uid":"pat1"}'),
        ("admin", "198.51.100.7", '{"uid":"pat2"}'),
    ]
    assert uow.run(lambda: User.select().where(User.uid == "pat3").count()) == 0
