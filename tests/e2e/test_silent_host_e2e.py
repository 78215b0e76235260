"""A Prosody host that stops sending, against a real server process whose sweeper runs every
second: its call is COMPLETED within three snapshot intervals plus one sweep interval."""

from __future__ import annotations

import json
import time

import httpx

from harness.clock import real_now_ms
from harness.env import base_env
from harness.eventstream import HOST, Stream
from service.store import uow
from service.store.models import AuditEvent, OccupantSession
from tests.e2e.conftest import start_server, stop_server
from tests.e2e.test_concurrency import seed
from tests.e2e.test_events_e2e import ROOM, initiate, record, send

INTERVAL_S = 1
SWEEP_S = 1


def test_the_sweeper_completes_the_call_of_a_silent_host(database_url: str) -> None:
    env = base_env(DATABASE_URL=database_url, SWEEP_INTERVAL=str(SWEEP_S), CALL_END_GRACE="1")
    server = start_server(env)
    try:
        tokens = seed(server)
        initiate(server, tokens)
        secret = env["PROSODY_EVENTS_SECRET"]
        stream = Stream()
        t0 = real_now_ms() - 5_000
        assert send(server.url, secret, stream.created(ROOM, "m1", t0)) == 204
        assert send(server.url, secret, stream.joined(ROOM, "m1", "s-doc", "doc", t0)) == 204
        assert send(server.url, secret, stream.joined(ROOM, "m1", "s-pat", "pat", t0)) == 204
        occupants = [
            {"session": "s-doc", "user_id": "doc", "joined_at": t0},
            {"session": "s-pat", "user_id": "pat", "joined_at": t0},
        ]
        listing = [{"room": stream.room(ROOM, "m1"), "occupants": occupants}]
        # The module's snapshots, every second, until the host falls silent.
        last = t0
        for _ in range(3):
            last = real_now_ms()
            snapshot = stream.snapshot(last, listing, INTERVAL_S)
            assert send(server.url, secret, snapshot) == 204
            time.sleep(INTERVAL_S)
        assert record().status == "IN_PROGRESS"

        deadline = last + (3 * INTERVAL_S + SWEEP_S) * 1000
        while record().status == "IN_PROGRESS" and real_now_ms() < deadline + 2_000:
            time.sleep(0.05)
        call = record()
        assert call.status == "COMPLETED"
        completed = uow.run(
            lambda: AuditEvent.get(
                (AuditEvent.call_id == call.id)
                & (AuditEvent.action == "call.transition")
                & AuditEvent.detail.contains('"to":"COMPLETED"')
            )
        )
        assert completed.actor == "sweeper"
        # Three intervals unheard, then at most one sweep interval (plus the sweep itself).
        assert last + 3 * INTERVAL_S * 1000 <= completed.at <= deadline + 500
        assert call.ended_at == last + 1
        assert call.duration == (last + 1 - t0 + 500) // 1000
        sessions = uow.run(lambda: list(OccupantSession.select()))
        assert {(s.end_reason, s.left_at) for s in sessions} == {("host_silent", last + 1)}

        admin = {"Authorization": f"Bearer {env['ADMIN_API_KEY']}"}
        hosts = httpx.get(f"{server.url}/api/admin/prosody-hosts", headers=admin).json()
        assert [(h["host"], h["silent"], h["snapshotInterval"]) for h in hosts["hosts"]] == [
            (HOST, True, INTERVAL_S)
        ]
        silent = uow.run(
            lambda: [
                json.loads(a.detail)
                for a in AuditEvent.select().where(AuditEvent.action == "prosody_host.silent")
            ]
        )
        assert [(a["host"], a["last_heard"]) for a in silent] == [(HOST, last)]
    finally:
        logs = server.logs()
        stop_server(server)
    assert "prosody host silent" in logs
