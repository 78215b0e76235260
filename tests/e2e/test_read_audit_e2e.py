"""Reads are audited, against the real server process: after a consultation, the patient reads
its details, the doctor lists the calls and operator "alice" opens it in the console; each read
is one audit entry naming who, what and from where, and the trail still verifies."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from harness.clock import midday_window, real_now_ms
from service import operators
from service.auth.dev import mint_dev_token
from service.config import load_settings
from service.store import uow
from service.store.models import AuditEvent
from tests.e2e.conftest import Server, cli, start_server, stop_server

ALICE = "alice-key-" + "k3y" * 10


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[Server]:
    entry = f"alice:ro:{operators.digest(ALICE).hex()}"
    running = start_server({**env, "ADMIN_API_KEYS": entry})
    yield running
    stop_server(running)


@pytest.mark.presence_from_clients
def test_a_consultations_reads_are_each_audited_once_with_actor_and_address(
    served: Server,
) -> None:
    settings = load_settings(served.env)
    admin = {"Authorization": f"Bearer {settings.admin_api_key}"}
    auth = {u: {"Authorization": f"Bearer {mint_dev_token(settings, u)}"} for u in ("doc", "pat")}
    with httpx.Client(base_url=served.url, timeout=30) as client:
        for uid in ("doc", "pat"):
            r = client.put(
                f"/api/admin/users/{uid}", json={"firstName": uid, "lastName": "X"}, headers=admin
            )
            assert r.status_code == 200, r.text
        body = {"doctorUid": "doc", "patientUid": "pat", "status": "CONFIRMED"}
        window = midday_window(real_now_ms())
        r = client.put("/api/admin/appointments/visit", json={**body, **window}, headers=admin)
        assert r.status_code == 200, r.text
        r = client.post(
            "/api/video-calls/initiate", json={"appointmentId": "visit"}, headers=auth["doc"]
        )
        assert r.status_code == 200, r.text
        for uid, action in (("doc", "join"), ("pat", "join"), ("doc", "start"), ("doc", "end")):
            r = client.patch(
                "/api/video-calls/visit/status", json={"action": action}, headers=auth[uid]
            )
            assert r.status_code == 200, r.text
        call = r.json()["videoCall"]
        assert call["status"] == "COMPLETED"

        assert client.get("/api/video-calls/visit", headers=auth["pat"]).status_code == 200
        listed = client.get("/api/video-calls", headers=auth["doc"])
        assert listed.status_code == 200 and listed.json()["count"] == 1
        console = client.get(
            f"/api/admin/console/calls/{call['id']}",
            headers={"Authorization": f"Bearer {ALICE}"},
        )
        assert console.status_code == 200, console.text

    reads = uow.run(
        lambda: [
            (e.actor, e.action, e.call_id, e.appointment_id, json.loads(e.detail), e.address)
            for e in AuditEvent.select()
            .where(AuditEvent.action.endswith(".read") | AuditEvent.action.endswith(".listed"))
            .order_by(AuditEvent.seq)
        ]
    )
    assert reads == [
        ("pat", "call.read", call["id"], "visit", {}, "127.0.0.1"),
        ("doc", "calls.listed", None, None, {"count": 1}, "127.0.0.1"),
        ("alice", "console.call.read", call["id"], "visit", {}, "127.0.0.1"),
    ]
    verified = cli(served.env, "audit", "verify")
    assert verified.returncode == 0, verified.stdout
