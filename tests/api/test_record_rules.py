"""Rules that keep the record honest, through the API on SQLite and PostgreSQL: session flags,
inactive accounts, and a measured consultation no client report can erase."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playhouse.migrations import Runner

from harness.eventstream import Stream, consultation, signed
from service.store import db, uow
from service.store.migrate import MIGRATIONS_DIR
from service.store.models import AuditEvent, OccupantSession, VideoCall
from tests.api.conftest import Api
from tests.api.test_prosody_events import details

ROOM = "appointment_appt1"


def post(api: Api, event: dict[str, Any]) -> None:
    body, headers = signed(api.settings.prosody_events_secrets[0], event)
    response = api.client.post("/api/prosody/events", content=body, headers=headers)
    assert response.status_code == 204, response.text


def stored_flags() -> dict[str, tuple[bool, bool]]:
    return uow.run(
        lambda: {
            row.session: (bool(row.repaired), bool(row.counted)) for row in OccupantSession.select()
        }
    )


# --- session flags (regression: the compiled insert stored repaired and counted as true) --


def test_a_plain_join_and_leave_is_not_repaired(call: Api) -> None:
    t0 = call.clock.ms - 700_000
    for event in consultation(Stream(), ROOM, "doc", "pat", t0):
        post(call, event)
    sessions = details(call)["presence"]["sessions"]
    assert [(s["role"], s["repaired"]) for s in sessions] == [
        ("doctor", False),
        ("patient", False),
    ]
    assert stored_flags() == {"s-doc": (False, True), "s-pat": (False, True)}


def test_a_session_after_a_completed_calls_cutoff_is_neither_counted_nor_open(call: Api) -> None:
    t0 = call.clock.ms - 900_000
    stream = Stream()
    for event in consultation(stream, ROOM, "doc", "pat", t0):
        post(call, event)
    assert details(call)["videoCall"]["status"] == "COMPLETED"
    # The patient comes back to the empty room long after the call ended.
    post(call, stream.joined(ROOM, "m2", "s-late", "pat", t0 + 800_000))
    body = details(call)
    assert body["videoCall"]["status"] == "COMPLETED"
    assert body["videoCall"]["duration"] == 600
    assert [s["role"] for s in body["presence"]["sessions"]] == ["doctor", "patient"]
    assert all(s["leftAt"] is not None for s in body["presence"]["sessions"])
    assert stored_flags()["s-late"] == (False, False)
    open_sessions = uow.run(lambda: VideoCall.get().open_sessions)
    assert open_sessions == 0


# --- inactive accounts -------------------------------------------------------------------


def test_an_inactive_account_is_refused_on_every_video_call_endpoint(call: Api) -> None:
    call.put_user("pat", isActive=False)
    auth = call.auth("pat")
    requests = [
        call.client.get("/api/video-calls", headers=auth),
        call.client.get("/api/video-calls/appt1", headers=auth),
        call.client.get("/api/video-calls/token/appt1", headers=auth),
        call.client.get("/api/video-calls/stats", headers=auth),
        call.client.post(
            "/api/video-calls/initiate", json={"appointmentId": "appt1"}, headers=auth
        ),
        call.client.patch("/api/video-calls/appt1/status", json={"action": "cancel"}, headers=auth),
    ]
    for response in requests:
        assert response.status_code == 403, (response.request.url, response.text)
        assert response.json()["error"] == "account_inactive"
    # The refused cancel changed nothing.
    assert details(call, "doc")["videoCall"]["status"] == "SCHEDULED"


def test_an_unknown_account_is_refused_too(call: Api) -> None:
    response = call.client.get("/api/video-calls", headers=call.auth("nobody"))
    assert response.status_code == 403
    assert response.json()["error"] == "account_inactive"


# --- the measured consultation ------------------------------------------------------------


def completed_totals(api: Api) -> tuple[int, int]:
    response = api.client.get("/api/video-calls/stats", headers=api.auth("doc"))
    assert response.status_code == 200, response.text
    body = response.json()
    return body["byStatus"]["COMPLETED"], body["totalDuration"]


@pytest.mark.parametrize("action", ["failed", "cancel"])
@pytest.mark.parametrize("who", ["doc", "pat"])
def test_a_measured_consultation_survives_client_failed_and_cancel(
    call: Api, action: str, who: str
) -> None:
    t0 = call.clock.ms - 1_500_000
    stream = Stream()
    post(call, stream.created(ROOM, "m1", t0))
    post(call, stream.joined(ROOM, "m1", "s-doc", "doc", t0 + 1_000))
    post(call, stream.joined(ROOM, "m1", "s-pat", "pat", t0 + 61_000))
    # Twenty minutes together, then one of them reports a failure or a cancel.
    post(call, stream.left(ROOM, "m1", "s-pat", "pat", t0 + 1_261_000))
    response = call.report(who, "appt1", action)
    assert response.status_code == 200, response.text
    assert response.json()["videoCall"]["status"] == "IN_PROGRESS"
    post(call, stream.left(ROOM, "m1", "s-doc", "doc", t0 + 1_262_000))
    post(call, stream.destroyed(ROOM, "m1", t0 + 1_262_500))
    record = details(call)["videoCall"]
    assert record["status"] == "COMPLETED"
    assert record["duration"] == 1200
    assert completed_totals(call) == (1, 1200)
    audited = uow.run(
        lambda: [
            row.detail for row in AuditEvent.select().where(AuditEvent.action == "status.reported")
        ]
    )
    assert [json.loads(detail) for detail in audited] == [{"action": action, "advisory": True}]


def test_before_prosody_saw_both_failed_applies_as_today(call: Api) -> None:
    t0 = call.clock.ms - 120_000
    stream = Stream()
    post(call, stream.joined(ROOM, "m1", "s-doc", "doc", t0))
    # Only the doctor was ever there: the doctor's report of a failure stands.
    response = call.report("doc", "appt1", "failed")
    assert response.status_code == 200, response.text
    assert details(call)["videoCall"]["status"] == "FAILED"


def test_migration_0003_puts_right_what_sql_can_tell(tmp_path: Path) -> None:
    """Rows stored by the old insert (both flags true) are corrected where certain."""
    database = db.make_database(f"sqlite:///{tmp_path / 'old.db'}", 2)
    db.bind(database)
    runner = Runner(database, str(MIGRATIONS_DIR), table_name="schema_migrations")

    def before() -> None:
        runner.up(target="0002_server_side_presence")
        rows = [
            ("plain", 1_000, 2_000, "left"),
            ("open", 1_000, None, None),
            ("no-join", None, 2_000, "left"),
            ("restart", 1_000, 2_000, "prosody_restart"),
        ]
        for session, joined, left, reason in rows:
            OccupantSession.insert(
                call_id="vc_1",
                session=session,
                role="patient",
                joined_at=joined,
                left_at=left,
                end_reason=reason,
                repaired=True,
                counted=True,
            ).execute()
        runner.up()

    uow.run(before)
    assert stored_flags() == {
        "plain": (False, True),
        "open": (False, True),
        "no-join": (False, False),
        "restart": (True, True),
    }
    database.close_all()  # type: ignore[attr-defined]
