"""Acknowledged means durable: `kill -9` of the service in the middle of a stream of concurrent
signed events, then re-sending what was not acknowledged (as Prosody's module does), gives
the same records as an uninterrupted run. On SQLite and on PostgreSQL, real processes.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from harness.clock import real_now_ms
from harness.eventstream import Stream, consultation, signed
from service.store import uow
from service.store.models import ProsodyEvent
from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.test_concurrency import put_appointment, seed
from tests.store.support import reset_for_tests

CALLS = 8
VOLATILE = {"id", "createdAt", "updatedAt"}


def appointments() -> list[str]:
    return [f"kill{n}" for n in range(CALLS)]


def streams(t0: int) -> dict[str, list[dict[str, Any]]]:
    """Per call, its consultation with a snapshot in the middle: what one Prosody sends."""
    result = {}
    for offset, appointment in enumerate(appointments()):
        stream = Stream()
        room = f"appointment_{appointment}"
        events = consultation(stream, room, "doc", "pat", t0 + offset * 1_000)
        snapshot = stream.snapshot(
            t0 + offset * 1_000 + 120_000,
            [
                {
                    "room": stream.room(room, "m1"),
                    "occupants": [
                        {
                            "session": "s-doc",
                            "user_id": "doc",
                            "joined_at": t0 + offset * 1_000 + 1_000,
                        },
                        {
                            "session": "s-pat",
                            "user_id": "pat",
                            "joined_at": t0 + offset * 1_000 + 61_000,
                        },
                    ],
                }
            ],
        )
        result[appointment] = [*events[:3], snapshot, *events[3:]]
    return result


def prepare(server: Server) -> dict[str, str]:
    tokens = seed(server)
    for appointment in appointments():
        put_appointment(server, appointment)
        response = httpx.post(
            f"{server.url}/api/video-calls/initiate",
            json={"appointmentId": appointment},
            headers={"Authorization": tokens["doc"]},
            timeout=30,
        )
        assert response.status_code == 200, response.text
    return tokens


def send(client: httpx.Client, secret: str, event: dict[str, Any]) -> bool:
    """True when the service acknowledged the event (2xx); any failure means "send again"."""
    body, headers = signed(secret, event)
    try:
        response = client.post("/api/prosody/events", content=body, headers=headers)
    except httpx.TransportError:
        return False
    return response.status_code == 204


def deliver(
    server: Server, by_call: dict[str, list[dict[str, Any]]], kill_after: int | None
) -> dict[str, list[dict[str, Any]]]:
    """Each call's events in order from its own sender, all senders at once.

    With `kill_after`, the service gets SIGKILL once that many events are acknowledged; each
    sender keeps what was not acknowledged, in order. Returns what is left to send.
    """
    secret = server.env["PROSODY_EVENTS_SECRET"]
    acknowledged = 0
    lock = threading.Lock()
    killed = threading.Event()

    def sender(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        nonlocal acknowledged
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for index, event in enumerate(events):
                if not send(client, secret, event):
                    return events[index:]
                with lock:
                    acknowledged += 1
                    if (
                        kill_after is not None
                        and acknowledged >= kill_after
                        and not killed.is_set()
                    ):
                        killed.set()
                        server.process.kill()  # SIGKILL: no shutdown, no flush, no goodbye
        return []

    with ThreadPoolExecutor(len(by_call)) as pool:
        left = dict(zip(by_call, pool.map(sender, by_call.values()), strict=True))
    if kill_after is not None:
        assert killed.is_set()
        server.process.wait(timeout=10)
    return left


def records(server: Server, tokens: dict[str, str]) -> dict[str, Any]:
    result = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for appointment in appointments():
            response = client.get(
                f"/api/video-calls/{appointment}", headers={"Authorization": tokens["doc"]}
            )
            assert response.status_code == 200, response.text
            body = response.json()
            body["videoCall"] = {k: v for k, v in body["videoCall"].items() if k not in VOLATILE}
            body["appointment"].pop("id")
            result[appointment] = body
    return result


def test_kill_9_during_a_stream_then_resending_gives_the_same_records(
    env: dict[str, str],
) -> None:
    by_call = streams(real_now_ms() - 900_000)
    total = sum(len(events) for events in by_call.values())

    # The interrupted run.
    first = start_server(env)
    try:
        tokens = prepare(first)
        left = deliver(first, by_call, kill_after=total // 3)
    finally:
        stop_server(first)
    unacknowledged = sum(len(events) for events in left.values())
    assert 0 < unacknowledged < total
    second = start_server(env)
    try:
        assert deliver(second, left, kill_after=None) == {call: [] for call in left}
        interrupted = records(second, tokens)
    finally:
        stop_server(second)
    stored = uow.run(lambda: ProsodyEvent.select().count())
    assert stored == total

    # The same events, uninterrupted, on an emptied database.
    uow.run(reset_for_tests)
    third = start_server(env)
    try:
        tokens = prepare(third)
        assert deliver(third, by_call, kill_after=None) == {call: [] for call in by_call}
        uninterrupted = records(third, tokens)
    finally:
        stop_server(third)

    assert interrupted == uninterrupted
    assert {r["videoCall"]["status"] for r in uninterrupted.values()} == {"COMPLETED"}
    assert {r["videoCall"]["duration"] for r in uninterrupted.values()} == {600}
