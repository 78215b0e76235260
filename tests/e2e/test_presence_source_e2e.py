"""A consultation nobody attended, reported by both browsers, against the real server process.

The events secret is configured (presence comes from the server): the doctor and the patient
send `join`, `start` and `end` with nobody in the Jitsi room. The call stays SCHEDULED, the
reports are listed and audited, the sweep (`videocalls sweep`, another process) settles it
NO_SHOW with `missing: "both"`, and the doctor's statistics count nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from harness.clock import local, midday_window, real_now_ms
from service.auth.dev import mint_dev_token
from service.config import load_settings
from service.store import uow
from service.store.models import AuditEvent
from tests.e2e.conftest import Server, cli, start_server, stop_server

ACTIONS = ("join", "start", "end")


def just_ended(now_ms: int) -> dict[str, str]:
    """Half an hour that ended at least a minute ago, in a zone where it is about noon (so the
    window never crosses midnight, whenever the test runs)."""
    zone = midday_window(now_ms)["timezone"]
    now = local(now_ms, zone).replace(second=0, microsecond=0)
    end = now - timedelta(minutes=1)
    start = end - timedelta(minutes=30)
    return {
        "appointmentDate": end.date().isoformat(),
        "startTime": start.strftime("%H:%M"),
        "endTime": end.strftime("%H:%M"),
        "timezone": zone,
    }


@pytest.fixture
def no_sweeper(env: dict[str, str]) -> Iterator[Server]:
    """The server with its own sweeper off (the test sweeps from another process) and no
    grace after the appointment's end."""
    running = start_server({**env, "SWEEP_INTERVAL": "0", "NO_SHOW_GRACE": "0"})
    yield running
    stop_server(running)


def test_browsers_cannot_report_a_consultation_nobody_attended(no_sweeper: Server) -> None:
    server = no_sweeper
    settings = load_settings(server.env)
    assert settings.server_tracks_presence  # PROSODY_EVENTS_SECRET is set
    admin = {"Authorization": f"Bearer {settings.admin_api_key}"}
    auth = {
        uid: {"Authorization": f"Bearer {mint_dev_token(settings, uid)}"} for uid in ("doc", "pat")
    }
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for uid in ("doc", "pat"):
            r = client.put(f"/api/admin/users/{uid}", json={"firstName": uid}, headers=admin)
            assert r.status_code == 200, r.text
        body = {"doctorUid": "doc", "patientUid": "pat", "status": "CONFIRMED"}
        r = client.put(
            "/api/admin/appointments/ghost",
            json={**body, **just_ended(real_now_ms())},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        r = client.post(
            "/api/video-calls/initiate", json={"appointmentId": "ghost"}, headers=auth["doc"]
        )
        assert r.status_code == 200, r.text

        for uid in ("doc", "pat"):
            for action in ACTIONS:
                r = client.patch(
                    "/api/video-calls/ghost/status", json={"action": action}, headers=auth[uid]
                )
                assert r.status_code == 200, r.text
                assert r.json()["videoCall"]["status"] == "SCHEDULED"

        record = client.get("/api/video-calls/ghost", headers=auth["doc"]).json()
        assert record["videoCall"]["status"] == "SCHEDULED"
        assert record["videoCall"]["verification"] == "server"
        reports = record["clientReports"]
        assert [(r["uid"], r["action"], r["outcome"]) for r in reports] == [
            (uid, action, "advisory")
            for uid in ("doc", "pat")
            for action in ("join", "start", "end")
        ]

        swept = cli(server.env, "sweep")
        assert swept.returncode == 0, swept.stderr
        record = client.get("/api/video-calls/ghost", headers=auth["pat"]).json()
        assert record["videoCall"]["status"] == "NO_SHOW"
        assert record["presence"]["missing"] == "both"
        assert record["videoCall"]["duration"] is None
        assert record["appointment"]["status"] == "NO_SHOW"

        stats = client.get("/api/video-calls/stats", headers=auth["doc"]).json()
        assert (stats["totalCalls"], stats["totalDuration"]) == (0, 0)
        assert stats["serverVerified"]["totalCalls"] == 0
        assert stats["byStatus"]["COMPLETED"] == 0 and stats["byStatus"]["NO_SHOW"] == 1

    audited = uow.run(
        lambda: AuditEvent.select().where(AuditEvent.action == "status.reported").count()
    )
    assert audited == 6
