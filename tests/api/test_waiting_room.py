"""The waiting room through the API: who waits since when, how long each party waited, and
late clinics (the no-show deadline waits for a party who is still there)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.eventstream import Stream
from service import sweeper
from service.store import uow
from service.store.models import Appointment, AuditEvent
from service.wire.base import iso
from tests.api.conftest import Api
from tests.api.test_prosody_events import ROOM, details, post
from tests.clock import MINUTE_MS, appointment_around


@pytest.fixture
def clinic(seeded: Api) -> tuple[Api, int, int]:
    """Appointment `appt1` from 30 minutes ago to 30 minutes ahead; its call initiated.
    Returns the api, the moment the patient arrives (now) and the appointment's end."""
    api = seeded
    api.put_appointment(
        "appt1", **appointment_around(api.clock.ms, "UTC", 30 * MINUTE_MS, 30 * MINUTE_MS)
    )
    assert api.initiate("pat", "appt1").status_code == 200
    ends = uow.run(lambda: Appointment.get_by_id("appt1").ends_at)
    return api, api.clock.ms, ends


def at(api: Api, ms: int) -> None:
    """Move the service's clock (signatures are checked against it) and sweep there."""
    api.clock.set(ms)
    assert sweeper.sweep(api.settings, at=ms).ran


def record(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    body = details(api)
    return body["videoCall"], body["presence"]


def test_a_doctor_40_minutes_late_gives_an_ordinary_completed_call(
    clinic: tuple[Api, int, int],
) -> None:
    api, arrived, ends = clinic
    stream = Stream()
    assert post(api, stream.joined(ROOM, "m1", "s-pat", "pat", arrived)).status_code == 204
    call, presence = record(api)
    assert presence["waiting"] == {"role": "patient", "since": iso(arrived)}
    assert (call["patientWaitSeconds"], call["doctorWaitSeconds"]) == (None, None)

    # Past the old no-show deadline (end + NO_SHOW_GRACE) the patient is still waiting.
    at(api, ends + api.settings.no_show_grace * 1000 + MINUTE_MS)
    call, presence = record(api)
    assert call["status"] == "SCHEDULED"
    assert presence["waiting"] == {"role": "patient", "since": iso(arrived)}

    late = ends + 40 * MINUTE_MS
    at(api, late)
    # Tokens keep being issued while the call is SCHEDULED.
    assert api.initiate("doc", "appt1").status_code == 200
    token = api.client.get("/api/video-calls/token/appt1", headers=api.auth("doc"))
    assert token.status_code == 200
    assert post(api, stream.joined(ROOM, "m1", "s-doc", "doc", late)).status_code == 204
    # Together from `late` on: a moment later the call is under way.
    at(api, late + 1_000)
    call, presence = record(api)
    assert call["status"] == "IN_PROGRESS" and presence["waiting"] is None
    waited = (late - arrived + 500) // 1000
    assert (call["patientWaitSeconds"], call["doctorWaitSeconds"]) == (waited, 0)

    post(api, stream.left(ROOM, "m1", "s-pat", "pat", late + 10 * MINUTE_MS))
    post(api, stream.left(ROOM, "m1", "s-doc", "doc", late + 10 * MINUTE_MS))
    at(api, late + 10 * MINUTE_MS + api.settings.call_end_grace * 1000)
    call, presence = record(api)
    assert call["status"] == "COMPLETED"
    assert (call["startedAt"], call["duration"]) == (iso(late), 600)
    assert call["endedAt"] == iso(late + 10 * MINUTE_MS)
    assert (call["patientWaitSeconds"], call["doctorWaitSeconds"]) == (waited, 0)
    assert presence["missing"] is None and presence["waiting"] is None

    stats = api.client.get("/api/video-calls/stats", headers=api.auth("doc")).json()
    assert stats["avgPatientWait"] == float(waited)
    assert stats["avgDuration"] == 600.0


def test_a_patient_who_gives_up_after_the_deadline_gives_no_show_of_the_doctor(
    clinic: tuple[Api, int, int],
) -> None:
    api, arrived, ends = clinic
    stream = Stream()
    post(api, stream.joined(ROOM, "m1", "s-pat", "pat", arrived))
    gave_up = ends + api.settings.no_show_grace * 1000 + 5 * MINUTE_MS
    at(api, gave_up)
    post(api, stream.left(ROOM, "m1", "s-pat", "pat", gave_up))
    call, presence = record(api)
    # Within the grace after leaving, a return would continue the wait.
    assert call["status"] == "SCHEDULED" and presence["waiting"] is None

    at(api, gave_up + api.settings.call_end_grace * 1000)
    body = details(api)
    call, presence = body["videoCall"], body["presence"]
    assert call["status"] == "NO_SHOW" and body["appointment"]["status"] == "NO_SHOW"
    assert presence["missing"] == "doctor"
    assert call["patientWaitSeconds"] == (gave_up - arrived + 500) // 1000
    assert call["doctorWaitSeconds"] is None
    assert (call["startedAt"], call["duration"]) == (None, None)
    refused = api.client.get("/api/video-calls/token/appt1", headers=api.auth("doc"))
    assert refused.status_code == 409 and refused.json()["error"] == "call_closed"
    stats = api.client.get("/api/video-calls/stats", headers=api.auth("doc")).json()
    assert stats["avgPatientWait"] is None


def test_a_knock_admitted_and_a_recording_through_the_receiver(
    clinic: tuple[Api, int, int],
) -> None:
    api, t0, _ = clinic
    stream = Stream()
    lobby = Stream()  # the module on the lobby component: its own host would be separate

    def knock(kind: str, at: int, **fields: Any) -> dict[str, Any]:
        occupant = {"session": "k-pat", "user_id": "pat"}
        return lobby.event(kind, at, room=lobby.room(ROOM, "lobby1"), occupant=occupant, **fields)

    def recorder(kind: str, at: int) -> dict[str, Any]:
        recording = {"session": "rec-1", "mode": "file"}
        return stream.event(kind, at, room=stream.room(ROOM, "m1"), recording=recording)

    assert post(api, stream.joined(ROOM, "m1", "s-doc", "doc", t0)).status_code == 204
    at(api, t0 + 30_000)
    assert post(api, knock("lobby.joined", t0 + 30_000)).status_code == 204
    at(api, t0 + 90_000)
    call, presence = record(api)
    assert presence["waiting"] == {"role": "patient", "since": iso(t0 + 30_000)}
    assert presence["lobby"] == [
        {
            "role": "patient",
            "joinedAt": iso(t0 + 30_000),
            "leftAt": None,
            "reason": None,
            "repaired": False,
        }
    ]
    post(api, knock("lobby.left", t0 + 90_000, reason="admitted"))
    post(api, stream.joined(ROOM, "m1", "s-pat", "pat", t0 + 90_500))
    post(api, recorder("recording.started", t0 + 100_000))
    at(api, t0 + 400_000)
    post(api, recorder("recording.stopped", t0 + 400_000))
    post(api, stream.left(ROOM, "m1", "s-pat", "pat", t0 + 690_500))
    post(api, stream.left(ROOM, "m1", "s-doc", "doc", t0 + 691_000))
    at(api, t0 + 691_000 + api.settings.call_end_grace * 1000)
    call, presence = record(api)
    assert call["status"] == "COMPLETED"
    assert (call["startedAt"], call["duration"]) == (iso(t0 + 90_500), 600)
    # Waited from the knock, not from the admission.
    assert (call["patientWaitSeconds"], call["doctorWaitSeconds"]) == (61, 91)
    assert presence["lobby"][0]["reason"] == "admitted"
    assert presence["patientPresence"] == 600
    assert call["recordings"] == [
        {"startedAt": iso(t0 + 100_000), "endedAt": iso(t0 + 400_000), "mode": "file"}
    ]
    audits = uow.run(
        lambda: [
            (e.action, json.loads(e.detail))
            for e in AuditEvent.select().where(AuditEvent.action.startswith("recording."))
        ]
    )
    assert audits == [
        ("recording.started", {"session": "rec-1", "mode": "file", "at": t0 + 100_000}),
        ("recording.stopped", {"session": "rec-1", "mode": "file", "at": t0 + 400_000}),
    ]


def test_the_console_draws_knocks_and_recordings(clinic: tuple[Api, int, int]) -> None:
    from tests.api.test_openapi import conforms

    api, t0, _ = clinic
    stream, lobby = Stream(), Stream()
    knock = {"session": "k-pat", "user_id": "pat"}
    recording = {"session": "rec-1", "mode": "stream"}
    main, hall = stream.room(ROOM, "m1"), lobby.room(ROOM, "lobby1")
    for event in (
        stream.joined(ROOM, "m1", "s-doc", "doc", t0 - 60_000),
        lobby.event("lobby.joined", t0 - 50_000, room=hall, occupant=knock),
        lobby.event("lobby.left", t0 - 40_000, room=hall, occupant=knock, reason="admitted"),
        stream.joined(ROOM, "m1", "s-pat", "pat", t0 - 39_000),
        stream.event("recording.started", t0 - 30_000, room=main, recording=recording),
    ):
        assert post(api, event).status_code == 204
    path = "/api/admin/console/calls/{ref}"
    response = api.client.get("/api/admin/console/calls/appt1", headers=api.admin())
    view = conforms(response, path, "get", 200)
    assert [(v["role"], v["reason"]) for v in view["lobby"]] == [("patient", "admitted")]
    assert view["videoCall"]["recordings"] == [
        {"startedAt": iso(t0 - 30_000), "endedAt": None, "mode": "stream"}
    ]
