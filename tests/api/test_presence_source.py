"""Nobody but the server writes the record (PRESENCE_SOURCE), on SQLite and PostgreSQL.

With a Prosody receiver configured (the default here), clients' `join`, `start` and `end` are
listed and audited and change nothing; with `clients`, the record says it was reported, a
one-sided `start` is refused, and no reported minute reaches the verified totals.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from service import sweeper
from service.app import create_app
from service.config import load_settings
from service.store import uow
from service.store.models import Appointment, AuditEvent
from tests.api.conftest import Api
from tests.clock import FrozenClock

SERVER_ACTIONS = ("join", "start", "end")


def details(api: Api, uid: str = "doc", ref: str = "appt1") -> dict[str, Any]:
    response = api.client.get(f"/api/video-calls/{ref}", headers=api.auth(uid))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def stats(api: Api) -> dict[str, Any]:
    response = api.client.get("/api/video-calls/stats", headers=api.auth("doc"))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_reports_of_a_consultation_nobody_attended_change_nothing(call: Api) -> None:
    assert call.settings.server_tracks_presence
    before = details(call)["videoCall"]
    assert before["verification"] == "server"
    for uid in ("doc", "pat"):
        for action in SERVER_ACTIONS:
            call.clock.advance(2_000)
            response = call.report(uid, "appt1", action)
            # The answer existing frontends expect: 200 with the call, unchanged.
            assert response.status_code == 200, response.text
            answered = response.json()["videoCall"]
            assert answered["status"] == "SCHEDULED"
            assert answered["startedAt"] is None and answered["duration"] is None
    body = details(call)
    record = body["videoCall"]
    assert record["status"] == "SCHEDULED"
    assert record["doctorJoinedAt"] is None and record["patientJoinedAt"] is None
    assert record["startedAt"] is record["endedAt"] is record["duration"] is None
    reports = body["clientReports"]
    assert [(r["uid"], r["action"], r["outcome"]) for r in reports] == [
        (uid, action, "advisory") for uid in ("doc", "pat") for action in SERVER_ACTIONS
    ]
    assert [r["at"] for r in reports] == sorted(r["at"] for r in reports)
    audited = uow.run(
        lambda: AuditEvent.select().where(AuditEvent.action == "status.reported").count()
    )
    assert audited == 6

    # After the appointment's no-show deadline, presence alone settles it: nobody came.
    ends = uow.run(lambda: Appointment.get_by_id("appt1").ends_at)
    deadline = ends + call.settings.no_show_grace * 1000
    sweeper.sweep(call.settings, at=deadline - 1)
    assert details(call)["videoCall"]["status"] == "SCHEDULED"
    sweeper.sweep(call.settings, at=deadline)
    settled = details(call)
    assert settled["videoCall"]["status"] == "NO_SHOW"
    assert settled["presence"]["missing"] == "both"
    assert settled["videoCall"]["duration"] is None
    assert settled["appointment"]["status"] == "NO_SHOW"

    totals = stats(call)
    assert totals["totalCalls"] == 0 and totals["totalDuration"] == 0
    assert totals["serverVerified"]["totalCalls"] == 0
    assert totals["byStatus"]["COMPLETED"] == 0


def test_a_patient_alone_cannot_complete_another_doctors_call(seeded: Api) -> None:
    assert seeded.initiate("pat", "appt1").status_code == 200
    for action in SERVER_ACTIONS:
        assert seeded.report("pat", "appt1", action).status_code == 200
    assert details(seeded)["videoCall"]["status"] == "SCHEDULED"
    assert stats(seeded)["totalCalls"] == 0


def test_cancel_stays_a_client_decision_until_both_were_seen(call: Api) -> None:
    response = call.report("pat", "appt1", "cancel")
    assert response.status_code == 200, response.text
    assert response.json()["videoCall"]["status"] == "CANCELLED"
    assert [r["outcome"] for r in details(call)["clientReports"]] == ["applied"]


@pytest.fixture
def clients_api(database_url: str, clock: FrozenClock) -> Iterator[Api]:
    """PRESENCE_SOURCE=clients beside the receivers, seeded like `seeded`."""
    from harness.env import base_env

    settings = load_settings(base_env(DATABASE_URL=database_url, PRESENCE_SOURCE="clients"))
    with TestClient(
        create_app(settings), raise_server_exceptions=False, client=("127.0.0.1", 50000)
    ) as client:
        api = Api(client, settings, clock)
        for uid in ("doc", "pat"):
            api.put_user(uid)
        api.put_appointment("appt1")
        yield api


def test_with_clients_a_start_needs_both_joins(clients_api: Api) -> None:
    api = clients_api
    assert api.initiate("doc", "appt1").status_code == 200
    alone = api.report("doc", "appt1", "start")
    assert alone.status_code == 409
    assert alone.json() == {
        "message": "Both the doctor and the patient must join before the video call can start",
        "error": "participants_not_joined",
        "currentStatus": "SCHEDULED",
    }
    assert api.report("doc", "appt1", "join").status_code == 200
    assert api.report("doc", "appt1", "start").status_code == 409
    ended = api.report("doc", "appt1", "end")
    assert ended.status_code == 409 and ended.json()["error"] == "invalid_transition"
    assert details(api)["videoCall"]["status"] == "SCHEDULED"
    outcomes = [(r["action"], r["outcome"]) for r in details(api)["clientReports"]]
    assert outcomes == [
        ("start", "refused"),
        ("join", "applied"),
        ("start", "refused"),
        ("end", "refused"),
    ]


def test_with_clients_the_record_says_it_was_reported(clients_api: Api) -> None:
    api = clients_api
    assert api.initiate("doc", "appt1").status_code == 200
    assert api.report("doc", "appt1", "join").status_code == 200
    api.clock.advance(5_000)
    joined = api.report("pat", "appt1", "join")
    assert joined.json()["videoCall"]["status"] == "IN_PROGRESS"
    api.clock.advance(600_000)
    ended = api.report("doc", "appt1", "end")
    assert ended.status_code == 200, ended.text
    record = details(api)["videoCall"]
    assert record["status"] == "COMPLETED"
    assert record["duration"] == 600
    assert record["verification"] == "client_reported"
    listed = api.client.get("/api/video-calls", headers=api.auth("doc")).json()
    assert [c["verification"] for c in listed["videoCalls"]] == ["client_reported"]
    totals = stats(api)
    assert (totals["totalCalls"], totals["totalDuration"]) == (1, 600)
    assert totals["serverVerified"] == {
        "totalCalls": 0,
        "totalDuration": 0,
        "avgDuration": None,
        "byStatus": {s: 0 for s in totals["byStatus"]},
    }
