"""What a signed-in but hostile participant tried, on SQLite and PostgreSQL (issue "Nobody but
the server writes the record"): each answer is a 4xx that tells them nothing, never a 500.

- Appointment ids differing only in case shared a Jitsi room; the second `initiate` was a 500.
- A stranger told an existing appointment (403) from an unknown one (404), and a started call
  from one not yet started (404 "not initiated").
- A `javascript:` profile image went into every Jitsi token as the avatar.
- A correctly signed ID token whose uid held a lone surrogate or NUL was a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from service.app import create_app
from service.auth.dev import DEV_AUDIENCE, DEV_ISSUER
from service.auth.firebase import EMULATOR_HOST_ENV, FirebaseAuthenticator
from service.clock import now_s
from service.config import AuthMode
from service.store import clinic, db, uow
from service.store.models import Appointment, User, VideoCall
from tests import firebase_tokens
from tests.api.conftest import Api
from tests.clock import appointment_around

NOT_PARTICIPANT = {
    "message": "You are not a participant of this appointment",
    "error": "not_participant",
}


def count(model: Any) -> int:
    return int(uow.run(lambda: model.select().count()))


def put_appointment(api: Api, appointment_id: str) -> Any:
    body = {
        "doctorUid": "doc",
        "patientUid": "pat",
        **appointment_around(api.clock.ms),
        "status": "CONFIRMED",
    }
    return api.client.put(
        f"/api/admin/appointments/{appointment_id}", json=body, headers=api.admin()
    )


# --- one room per appointment, whatever the case ---------------------------------------------


def test_ids_differing_only_in_case_are_a_409_room_conflict(seeded: Api) -> None:
    assert put_appointment(seeded, "CaseAppt").status_code == 200
    refused = put_appointment(seeded, "caseappt")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["error"] == "room_conflict"
    assert "CaseAppt" in body["message"] and "caseappt" in body["message"]
    assert put_appointment(seeded, "CASEAPPT").status_code == 409
    # The stored one is untouched and can still be pushed again and started.
    assert put_appointment(seeded, "CaseAppt").status_code == 200
    started = seeded.initiate("doc", "CaseAppt")
    assert started.status_code == 200, started.text
    assert started.json()["videoCall"]["roomName"] == "appointment_caseappt"
    assert seeded.initiate("pat", "CaseAppt").status_code == 200
    # The refused id was never stored: a stranger's answer, not a 500.
    assert seeded.initiate("doc", "caseappt").json() == NOT_PARTICIPANT
    assert uow.run(lambda: [a.id for a in Appointment.select().order_by(Appointment.id)]) == [
        "CaseAppt",
        "appt1",
    ]


@pytest.mark.parametrize("bad", ["a.b", "a:b", "a@b", "a%20b", "x" * 129])
def test_appointment_ids_outside_the_room_alphabet_are_a_400(seeded: Api, bad: str) -> None:
    response = put_appointment(seeded, bad)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_id"
    assert count(Appointment) == 1


def test_appointment_ids_of_the_room_alphabet_are_kept(seeded: Api) -> None:
    for good in ("clxxx123456789", "demo-appt-1", "A_b-9", "x" * 128):
        assert put_appointment(seeded, good).status_code == 200


def test_a_racing_import_of_another_case_is_a_409_not_a_500(
    seeded: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check before the write cannot see a concurrent import's uncommitted row: the unique
    room_key index decides, and its refusal is the same 409."""
    assert put_appointment(seeded, "RaceAppt").status_code == 200
    monkeypatch.setattr(clinic, "room_owners", lambda keys: {})
    refused = put_appointment(seeded, "raceappt")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "room_conflict"
    assert count(Appointment) == 2


# --- no existence oracle ------------------------------------------------------------------


def _stranger_answers(api: Api, refs: list[str]) -> list[tuple[str, int, bytes]]:
    outsider = api.auth("outsider")
    answers = []
    for ref in refs:
        for name, response in (
            ("initiate", api.initiate("outsider", ref)),
            ("token", api.client.get(f"/api/video-calls/token/{ref}", headers=outsider)),
            ("status", api.report("outsider", ref, "join")),
            ("details", api.client.get(f"/api/video-calls/{ref}", headers=outsider)),
        ):
            answers.append((name, response.status_code, response.content))
    return answers


def test_a_stranger_gets_the_same_answer_for_existing_and_unknown_ids(call: Api) -> None:
    call.put_appointment("not-started")
    call_id = call.client.get("/api/video-calls/appt1", headers=call.auth("doc")).json()[
        "videoCall"
    ]["id"]
    refs = ["appt1", call_id, "not-started", "no-such-appointment", "vc_" + "0" * 32]
    answers = _stranger_answers(call, refs)
    expected = json.dumps(NOT_PARTICIPANT, separators=(",", ":")).encode()
    for name, status, content in answers:
        assert (name, status, content) == (name, 403, expected)
    # Nothing was created or started for the stranger.
    assert count(VideoCall) == 1


def test_participants_keep_their_404_and_unknown_ids_are_a_403(seeded: Api) -> None:
    seeded.put_appointment("appt2")
    doc = seeded.auth("doc")
    for response in (
        seeded.client.get("/api/video-calls/token/appt2", headers=doc),
        seeded.report("doc", "appt2", "join"),
        seeded.client.get("/api/video-calls/appt2", headers=doc),
    ):
        assert response.status_code == 404, response.text
        assert response.json() == {
            "message": "Video call not initiated for this appointment",
            "error": "video_call_not_found",
        }
    for response in (
        seeded.initiate("doc", "nope"),
        seeded.client.get("/api/video-calls/token/nope", headers=doc),
        seeded.report("doc", "nope", "join"),
        seeded.client.get("/api/video-calls/nope", headers=doc),
    ):
        assert (response.status_code, response.json()) == (403, NOT_PARTICIPANT)


def test_a_stranger_costs_the_same_queries_for_existing_and_unknown_ids(
    call: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing: the answer for an existing id must not be reached with less (or more) work."""
    statements: list[str] = []
    database = db.current()
    real: Any = database.execute_sql

    def counted(sql: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(sql.split()[0].upper())
        return real(sql, *args, **kwargs)

    monkeypatch.setattr(database, "execute_sql", counted)
    call.put_appointment("not-started")
    costs = {}
    for ref in ("appt1", "not-started", "no-such-appointment"):
        for path in (f"/api/video-calls/token/{ref}", f"/api/video-calls/{ref}"):
            statements.clear()
            call.client.get(path, headers=call.auth("outsider"))
            costs[(ref, path.split("/")[3])] = list(statements)
    assert len({tuple(v) for v in costs.values()}) == 1, costs


# --- https-only avatars -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(4)",
        "JavaScript:alert(4)",
        "data:image/svg+xml,<svg onload=alert(4)>",
        "http://images.example.test/a.png",
        "https://",
        "https:///a.png",
        "https://images.example.test/a b.png",
        "https://images.example.test/a.png\n",
        "//images.example.test/a.png",
    ],
)
def test_a_profile_image_url_must_be_https(api: Api, url: str) -> None:
    body = {"firstName": "Mallory", "profileImageUrl": url}
    response = api.client.put("/api/admin/users/mallory", json=body, headers=api.admin())
    assert response.status_code == 400, response.text
    assert "profileImageUrl" in response.json()["message"]
    assert count(User) == 0


def _avatar(api: Api, uid: str, appointment_id: str) -> Any:
    response = api.initiate(uid, appointment_id)
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["jitsiToken"], options={"verify_signature": False})
    return claims["context"]["user"].get("avatar")


def test_only_https_avatars_reach_a_token(seeded: Api) -> None:
    seeded.put_user("doc", profileImageUrl="https://images.example.test/doc.png")
    assert _avatar(seeded, "doc", "appt1") == "https://images.example.test/doc.png"
    # Stored before the rule: left out of the token, not handed to the other browser.
    uow.run(
        lambda: (
            User.update(profile_image_url="javascript:alert(4)").where(User.uid == "pat").execute()
        )
    )
    assert _avatar(seeded, "pat", "appt1") is None


# --- user ids from the identity provider ----------------------------------------------------

BAD_UIDS = ["\ud83d", "a\udc00b", "nul\x00", "\x00", "tab\there", "line\n", "é-user", "x" * 129]


def _endpoints(api: Api, headers: dict[str, str]) -> Iterator[tuple[str, Any]]:
    client = api.client
    yield (
        "initiate",
        client.post("/api/video-calls/initiate", json={"appointmentId": "appt1"}, headers=headers),
    )
    yield "token", client.get("/api/video-calls/token/appt1", headers=headers)
    yield (
        "status",
        client.patch("/api/video-calls/appt1/status", json={"action": "join"}, headers=headers),
    )
    yield "details", client.get("/api/video-calls/appt1", headers=headers)
    yield "list", client.get("/api/video-calls", headers=headers)
    yield "stats", client.get("/api/video-calls/stats", headers=headers)


def _assert_refused_everywhere(api: Api, token: str) -> None:
    for name, response in _endpoints(api, {"Authorization": f"Bearer {token}"}):
        assert response.status_code == 401, (name, response.text)
        body = response.json()
        assert body["error"] == "invalid_token", name
        assert body["message"], name


def _dev_token(api: Api, uid: str) -> str:
    now = now_s()
    claims = {"sub": uid, "iat": now, "exp": now + 600, "iss": DEV_ISSUER, "aud": DEV_AUDIENCE}
    return jwt.encode(claims, api.settings.dev_auth_secret, algorithm="HS256")


@pytest.mark.parametrize("uid", BAD_UIDS, ids=ascii)
def test_a_dev_token_for_an_impossible_uid_is_a_401(call: Api, uid: str) -> None:
    _assert_refused_everywhere(call, _dev_token(call, uid))


@pytest.fixture
def firebase_api(call: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """`call`'s database and records, behind firebase-admin's real ID-token verification
    (only Google's certificate endpoint stands in, tests/firebase_tokens.py)."""
    monkeypatch.delenv(EMULATOR_HOST_ENV, raising=False)
    firebase_tokens.install_cert_endpoint(monkeypatch)
    firebase = replace(
        call.settings,
        auth_mode=AuthMode.FIREBASE,
        firebase_project_id=firebase_tokens.PROJECT,
    )
    app = create_app(call.settings, FirebaseAuthenticator(firebase))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, call.settings, call.clock)


@pytest.mark.parametrize("uid", BAD_UIDS, ids=ascii)
def test_a_firebase_token_for_an_impossible_uid_is_a_401(firebase_api: Api, uid: str) -> None:
    token = firebase_tokens.id_token(firebase_tokens.claims(uid))
    _assert_refused_everywhere(firebase_api, token)


def test_a_firebase_token_for_a_participant_still_works(firebase_api: Api) -> None:
    token = firebase_tokens.id_token(firebase_tokens.claims("doc"))
    headers = {"Authorization": f"Bearer {token}"}
    for name, response in _endpoints(firebase_api, headers):
        assert response.status_code == 200, (name, response.text)
