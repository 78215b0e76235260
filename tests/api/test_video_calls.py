"""The five endpoints of the API document: success paths, on SQLite and PostgreSQL."""

from __future__ import annotations

import jwt
import pytest

from service.store import audit_log, uow
from tests.api.conftest import Api
from tests.clock import appointment_around


def test_initiate_returns_a_token_link_and_the_call(seeded: Api) -> None:
    response = seeded.initiate("doc", "appt1")
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Video call initiated successfully"
    call = body["videoCall"]
    assert call["appointmentId"] == "appt1"
    assert call["roomName"] == "appointment_appt1"
    assert call["status"] == "SCHEDULED"
    assert body["userRole"] == "doctor"
    assert body["isModerator"] is True
    assert body["expiresIn"] == "3 hours"
    assert body["meetingLink"] == (
        f"https://meet.example.test/appointment_appt1?jwt={body['jitsiToken']}"
    )
    assert body["domain"] == "meet.example.test"


def test_token_refresh_names_the_domain_too(seeded: Api) -> None:
    seeded.initiate("doc", "appt1")
    response = seeded.client.get("/api/video-calls/token/appt1", headers=seeded.auth("pat"))
    assert response.status_code == 200, response.text
    assert response.json()["domain"] == "meet.example.test"


def test_token_claims_pass_jitsi_verification_rules(seeded: Api) -> None:
    body = seeded.initiate("doc", "appt1").json()
    settings = seeded.settings
    claims = jwt.decode(
        body["jitsiToken"],
        settings.jitsi_app_secret,
        algorithms=["HS256"],
        audience=settings.jitsi_app_id,
        issuer=settings.jitsi_app_id,
    )
    assert claims["sub"] == "meet.example.test"
    assert claims["room"] == "appointment_appt1"
    assert claims["nbf"] < claims["iat"] < claims["exp"]
    assert claims["exp"] - claims["iat"] == 10800
    assert len(claims["jti"]) >= 16
    assert claims["moderator"] is True
    user = claims["context"]["user"]
    assert user["id"] == "doc"
    assert user["name"] == "Dr. Doc Test"
    assert user["moderator"] is True
    assert user["affiliation"] == "owner"
    assert user["lobby_bypass"] is True
    assert "email" not in user  # tokens end up in URLs: e-mail only when configured
    features = claims["context"]["features"]
    # Nobody records or broadcasts a consultation unless the operator grants it (consent).
    assert features["recording"] is False
    assert features["livestreaming"] is False
    assert features["screen-sharing"] is True


def test_patient_gets_a_member_token(seeded: Api) -> None:
    seeded.initiate("doc", "appt1")
    response = seeded.initiate("pat", "appt1")
    assert response.status_code == 200
    body = response.json()
    assert body["userRole"] == "patient"
    assert body["isModerator"] is False
    claims = jwt.decode(body["jitsiToken"], options={"verify_signature": False})
    assert claims["moderator"] is False
    assert claims["context"]["user"]["moderator"] is False
    assert claims["context"]["user"]["affiliation"] == "member"
    assert claims["context"]["user"]["lobby_bypass"] is True
    assert claims["context"]["features"]["recording"] is False
    assert claims["context"]["features"]["screen-sharing"] is True


def test_initiate_twice_returns_the_same_call_with_fresh_tokens(seeded: Api) -> None:
    first = seeded.initiate("doc", "appt1").json()
    second = seeded.initiate("pat", "appt1").json()
    assert first["videoCall"]["id"] == second["videoCall"]["id"]
    a = jwt.decode(first["jitsiToken"], options={"verify_signature": False})
    b = jwt.decode(second["jitsiToken"], options={"verify_signature": False})
    assert a["jti"] != b["jti"]


def test_token_endpoint_accepts_appointment_id_or_call_id(seeded: Api) -> None:
    call_id = seeded.initiate("doc", "appt1").json()["videoCall"]["id"]
    for ref in ("appt1", call_id):
        response = seeded.client.get(f"/api/video-calls/token/{ref}", headers=seeded.auth("pat"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["message"] == "Token retrieved successfully"
        assert body["videoCall"]["id"] == call_id
        assert body["userRole"] == "patient"


@pytest.mark.presence_from_clients
def test_join_by_both_moves_call_and_appointment_in_progress(seeded: Api) -> None:
    call_id = seeded.initiate("doc", "appt1").json()["videoCall"]["id"]
    first = seeded.report("doc", "appt1", "join")
    assert first.status_code == 200
    assert first.json()["message"] == "Video call status updated successfully"
    assert first.json()["videoCall"]["status"] == "SCHEDULED"
    assert first.json()["videoCall"]["doctorJoinedAt"] is not None
    # One frontend sends the call id instead of the appointment id; unknown fields are ignored.
    second = seeded.client.patch(
        f"/api/video-calls/{call_id}/status",
        json={"action": "join", "role": "patient"},
        headers=seeded.auth("pat"),
    )
    call = second.json()["videoCall"]
    assert call["status"] == "IN_PROGRESS"
    assert call["patientJoinedAt"] is not None
    assert call["startedAt"] is not None
    details = seeded.client.get("/api/video-calls/appt1", headers=seeded.auth("doc")).json()
    assert details["appointment"]["status"] == "IN_PROGRESS"


def test_rejoin_keeps_the_first_join_time(seeded: Api) -> None:
    seeded.initiate("doc", "appt1")
    first = seeded.report("doc", "appt1", "join").json()["videoCall"]["doctorJoinedAt"]
    again = seeded.report("doc", "appt1", "join").json()["videoCall"]["doctorJoinedAt"]
    assert first == again


@pytest.mark.presence_from_clients
def test_end_completes_call_and_appointment_with_duration(seeded: Api) -> None:
    seeded.initiate("doc", "appt1")
    seeded.report("doc", "appt1", "join")
    seeded.report("pat", "appt1", "join")
    response = seeded.report("pat", "appt1", "end")
    assert response.status_code == 200
    call = response.json()["videoCall"]
    assert call["status"] == "COMPLETED"
    assert call["endedAt"] is not None
    assert isinstance(call["duration"], int) and call["duration"] >= 0
    details = seeded.client.get("/api/video-calls/appt1", headers=seeded.auth("pat")).json()
    assert details["appointment"]["status"] == "COMPLETED"
    # A second `end` (the other participant's frontend) is a harmless repeat.
    assert seeded.report("doc", "appt1", "end").status_code == 200


@pytest.mark.parametrize("action,status", [("cancel", "CANCELLED"), ("failed", "FAILED")])
def test_cancel_and_failed(seeded: Api, action: str, status: str) -> None:
    seeded.initiate("doc", "appt1")
    response = seeded.report("doc", "appt1", action)
    assert response.status_code == 200
    assert response.json()["videoCall"]["status"] == status


def test_initiate_after_failure_starts_afresh(seeded: Api) -> None:
    seeded.initiate("doc", "appt1")
    seeded.report("doc", "appt1", "join")
    seeded.report("doc", "appt1", "failed")
    body = seeded.initiate("doc", "appt1").json()
    assert body["videoCall"]["status"] == "SCHEDULED"
    details = seeded.client.get("/api/video-calls/appt1", headers=seeded.auth("doc")).json()
    assert details["videoCall"]["doctorJoinedAt"] is None


def test_details_include_appointment_call_and_both_people(seeded: Api) -> None:
    seeded.initiate("doc", "appt1")
    response = seeded.client.get("/api/video-calls/appt1", headers=seeded.auth("pat"))
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Video call details retrieved successfully"
    assert body["appointment"] == {
        "id": "appt1",
        **appointment_around(seeded.clock.ms),
        "status": "CONFIRMED",
    }
    assert body["videoCall"]["duration"] is None
    assert body["doctor"] == {
        "uid": "doc",
        "firstName": "Doc",
        "lastName": "Test",
        "email": "doc@example.test",
        "profileImageUrl": None,
    }
    assert body["patient"]["uid"] == "pat"


def test_list_paginates_with_an_opaque_cursor(seeded: Api) -> None:
    for n in range(5):
        seeded.put_appointment(f"a{n}")
        assert seeded.initiate("doc", f"a{n}").status_code == 200
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        body = seeded.client.get(
            "/api/video-calls", params=params, headers=seeded.auth("doc")
        ).json()
        assert body["message"] == "Video calls retrieved successfully"
        assert body["count"] == len(body["videoCalls"]) <= 2
        seen.extend(c["appointmentId"] for c in body["videoCalls"])
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"a{n}" for n in range(5)]
    assert len(seen) == len(set(seen))
    item = seeded.client.get("/api/video-calls", headers=seeded.auth("pat")).json()["videoCalls"][0]
    assert item["appointment"]["doctor"]["uid"] == "doc"
    assert item["appointment"]["patient"]["uid"] == "pat"


def test_list_filters_by_status_and_shows_only_own_calls(seeded: Api) -> None:
    seeded.put_appointment("a2")
    seeded.initiate("doc", "appt1")
    seeded.initiate("doc", "a2")
    seeded.report("doc", "a2", "cancel")
    cancelled = seeded.client.get(
        "/api/video-calls", params={"status": "CANCELLED"}, headers=seeded.auth("doc")
    ).json()
    assert [c["appointmentId"] for c in cancelled["videoCalls"]] == ["a2"]
    outsider = seeded.client.get("/api/video-calls", headers=seeded.auth("outsider")).json()
    assert outsider["count"] == 0 and outsider["nextCursor"] is None


@pytest.mark.presence_from_clients
def test_stats_for_the_doctor(seeded: Api) -> None:
    days = [seeded.clock.day(days=n - 10) for n in range(3)]
    for n in range(3):
        seeded.put_appointment(f"s{n}", appointmentDate=days[n], timezone="UTC")
        seeded.initiate("doc", f"s{n}")
        seeded.report("doc", f"s{n}", "join")
        seeded.report("pat", f"s{n}", "join")
    seeded.report("doc", "s0", "end")
    seeded.report("doc", "s1", "end")
    body = seeded.client.get("/api/video-calls/stats", headers=seeded.auth("doc")).json()
    assert body["totalCalls"] == 2
    assert body["byStatus"]["COMPLETED"] == 2
    assert body["byStatus"]["IN_PROGRESS"] == 1
    assert body["totalDuration"] >= 0
    ranged = seeded.client.get(
        "/api/video-calls/stats",
        params={"from": days[1], "to": days[2]},
        headers=seeded.auth("doc"),
    ).json()
    assert ranged["totalCalls"] == 1
    assert ranged["byStatus"]["IN_PROGRESS"] == 1


@pytest.mark.presence_from_clients
def test_every_change_is_audited_without_tokens(seeded: Api) -> None:
    body = seeded.initiate("doc", "appt1").json()
    seeded.report("doc", "appt1", "join")
    seeded.report("pat", "appt1", "join")
    trail = uow.run(lambda: audit_log.audit_trail(body["videoCall"]["id"]))
    actions = [e.action for e in trail]
    assert actions[:2] == ["call.created", "token.issued"]
    assert "status.reported" in actions
    assert "call.transition" in actions
    assert "appointment.transition" in actions
    for entry in trail:
        assert body["jitsiToken"] not in entry.detail
        assert "jwt" not in entry.detail
