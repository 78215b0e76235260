"""Prosody's events over real HTTP to real server processes, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from harness.clock import real_now_ms
from harness.env import base_env
from harness.eventstream import Stream, consultation, event_sync_consultation, signed
from service.store import uow
from service.store.models import AuditEvent, OccupantSession, ProsodyEvent, VideoCall
from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.test_concurrency import put_appointment, seed

ROOM = "appointment_race1"


def send(url: str, secret: str, event: dict[str, Any], **kw: Any) -> int:
    body, headers = signed(secret, event, **kw)
    return httpx.post(
        f"{url}/api/prosody/events", content=body, headers=headers, timeout=30
    ).status_code


def initiate(server: Server, tokens: dict[str, str]) -> None:
    r = httpx.post(
        f"{server.url}/api/video-calls/initiate",
        json={"appointmentId": "race1"},
        headers={"Authorization": tokens["doc"]},
    )
    assert r.status_code == 200, r.text


def record() -> VideoCall:
    return uow.run(lambda: VideoCall.get(VideoCall.appointment_id == "race1"))


def test_signed_stream_over_http_and_rejections(server: Server) -> None:
    tokens = seed(server)
    initiate(server, tokens)
    secret = server.env["PROSODY_EVENTS_SECRET"]
    t0 = real_now_ms() - 700_000
    events = consultation(Stream(), ROOM, "doc", "pat", t0)
    for event in events:
        assert send(server.url, secret, event) == 204
    # Replays, forgeries and stale requests change nothing and store nothing.
    assert send(server.url, secret, events[2]) == 204
    forged = Stream().joined(ROOM, "m1", "intruder", "doc", t0)
    assert send(server.url, "whsec_" + "ZmFrZQ" * 8, forged) == 401
    assert send(server.url, secret, forged, timestamp=real_now_ms() // 1000 - 600) == 401
    assert uow.run(lambda: ProsodyEvent.select().count()) == len(events)
    call = record()
    assert call.status == "COMPLETED"
    assert call.started_at == t0 + 61_000
    assert call.ended_at == t0 + 661_000
    assert call.duration == 600
    logs = server.logs()
    assert "event rejected" in logs
    assert secret not in logs
    assert "v1," not in logs


@pytest.mark.postgres
def test_two_replicas_receiving_every_event_agree(postgres_database_url: str) -> None:
    """Each event is sent to both processes at once: one record per event, one final state.

    The sweeper runs every second in both, so its advisory lock is exercised as well.
    """
    postgres_url = postgres_database_url
    env = base_env(DATABASE_URL=postgres_url, SWEEP_INTERVAL="1")
    first, second = start_server(env), start_server(env)
    try:
        tokens = seed(first)
        initiate(first, tokens)
        secret = env["PROSODY_EVENTS_SECRET"]
        t0 = real_now_ms() - 700_000
        stream = Stream()
        doc, pat, room = "doc", "pat", ROOM
        # The patient's connection drops at 300 s and reconnects (a new session) at 305 s.
        events = [
            stream.created(room, "m1", t0),
            stream.joined(room, "m1", "s-doc", doc, t0 + 1_000),
            stream.joined(room, "m1", "s-pat", pat, t0 + 61_000),
            stream.left(room, "m1", "s-pat", pat, t0 + 300_000, reason="unknown"),
            stream.joined(room, "m1", "s-pat2", pat, t0 + 305_000),
            stream.snapshot(
                t0 + 310_000,
                [
                    {
                        "room": stream.room(room, "m1"),
                        "occupants": [
                            {"session": "s-doc", "user_id": doc, "joined_at": t0 + 1_000},
                            {"session": "s-pat2", "user_id": pat, "joined_at": t0 + 305_000},
                        ],
                    }
                ],
            ),
            stream.left(room, "m1", "s-pat2", pat, t0 + 661_000),
            stream.left(room, "m1", "s-doc", doc, t0 + 671_000),
            stream.destroyed(room, "m1", t0 + 671_500),
        ]
        jobs = [(url, e) for e in events for url in (first.url, second.url)]
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda job: send(job[0], secret, job[1]), jobs))
        assert set(statuses) == {204}
        stored = uow.run(lambda: ProsodyEvent.select().count())
        assert stored == len({e["id"] for e in events})
        received = uow.run(
            lambda: AuditEvent.select().where(AuditEvent.action == "event.received").count()
        )
        assert received == stored
        call = record()
        assert call.status == "COMPLETED"
        assert call.started_at == t0 + 61_000
        assert call.ended_at == t0 + 661_000
        # Together from 61 s to 300 s and from 305 s to 661 s.
        assert call.duration == (300_000 - 61_000 + 661_000 - 305_000) // 1000
        sessions = uow.run(
            lambda: sorted(
                s.session
                for s in OccupantSession.select().where(OccupantSession.call_id == call.id)
            )
        )
        assert sessions == ["s-doc", "s-pat", "s-pat2"]
        transitions = uow.run(
            lambda: [
                e.detail
                for e in AuditEvent.select()
                .where(AuditEvent.action == "call.transition")
                .order_by(AuditEvent.id)
            ]
        )
        assert len(transitions) == 2  # SCHEDULED -> IN_PROGRESS -> COMPLETED, once each
    finally:
        stop_server(first)
        stop_server(second)


def test_event_sync_stream_over_http_matches_the_signed_one(server: Server) -> None:
    """The same consultation through both receivers gives the same record (whole seconds)."""
    tokens = seed(server)
    initiate(server, tokens)
    t0_s = real_now_ms() // 1000 - 700
    headers = {"Authorization": f"Bearer {server.env['EVENT_SYNC_TOKEN']}"}
    for kind, payload in event_sync_consultation(ROOM, "doc", "pat", t0_s):
        r = httpx.post(f"{server.url}/api/event-sync/events/{kind}", json=payload, headers=headers)
        assert r.status_code == 200, r.text
    via_event_sync = record()

    # The signed stream of the same consultation, for another appointment of the same pair.
    put_appointment(server, "race2")
    r = httpx.post(
        f"{server.url}/api/video-calls/initiate",
        json={"appointmentId": "race2"},
        headers={"Authorization": tokens["doc"]},
    )
    assert r.status_code == 200
    for event in consultation(Stream(), "appointment_race2", "doc", "pat", t0_s * 1000):
        assert send(server.url, server.env["PROSODY_EVENTS_SECRET"], event) == 204
    via_v1 = uow.run(lambda: VideoCall.get(VideoCall.appointment_id == "race2"))

    for field in ("status", "started_at", "ended_at", "duration", "doctor_joined_at"):
        assert getattr(via_event_sync, field) == getattr(via_v1, field), field
    assert via_v1.status == "COMPLETED"
