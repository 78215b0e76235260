"""Webhooks to a real HTTP receiver that verifies them with `standardwebhooks`, sent by real
server processes fed a signed Prosody stream, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.clock import real_now_ms
from harness.env import base_env
from harness.eventstream import Stream, consultation
from service.config import load_settings
from tests.clock import HOUR_MS, appointment_around
from tests.e2e.conftest import Server, cli, free_port, start_server, stop_server
from tests.e2e.test_concurrency import put_appointment, seed
from tests.e2e.test_events_e2e import initiate, send
from tests.webhook_receiver import Receipt, Receiver

ROOM = "appointment_race1"
# What harness.eventstream.consultation tells the clinic, each once.
CONSULTATION = Counter(
    {
        "call.scheduled": 1,
        "call.waiting": 1,
        "call.started": 1,
        "call.completed": 1,
        "participant.joined": 2,
        "participant.left": 2,
    }
)


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    # Two secrets, as during a rotation: the receiver checks each one on its own.
    running = Receiver([whsec(), whsec()], free_port())
    running.start()
    yield running
    running.stop()


def hook_env(database_url: str, receiver: Receiver, **extra: str) -> dict[str, str]:
    return base_env(
        DATABASE_URL=database_url,
        WEBHOOK_URL=receiver.url,
        WEBHOOK_SECRET=" ".join(receiver.secrets),
        WEBHOOK_RETRY_DELAYS="1,1,1,1,1,1",
        WEBHOOK_TIMEOUT="2",
        SWEEP_INTERVAL="1",
        **extra,
    )


def admin(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {load_settings(server.env).admin_api_key}"}


def messages(server: Server, status: str | None = None) -> list[dict[str, Any]]:
    params = {"status": status} if status else {}
    r = httpx.get(f"{server.url}/api/admin/webhooks/messages", params=params, headers=admin(server))
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["messages"]
    return found


def of_call(receipts: list[Receipt], appointment_id: str) -> list[Receipt]:
    return sorted(
        (r for r in receipts if r.data.get("appointmentId") == appointment_id),
        key=lambda r: r.data["sequence"],
    )


def has(kind: str, appointment_id: str = "race1") -> Any:
    return lambda rs: any(r.type == kind for r in of_call(rs, appointment_id))


def details(server: Server, token: str, ref: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/api/video-calls/{ref}", headers={"Authorization": token})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_consultation_and_a_no_show_are_told_once_each(
    database_url: str, receiver: Receiver
) -> None:
    server = start_server(hook_env(database_url, receiver))
    try:
        tokens = seed(server)
        initiate(server, tokens)
        secret = server.env["PROSODY_EVENTS_SECRET"]
        t0 = real_now_ms() - 700_000
        for event in consultation(Stream(), ROOM, "doc", "pat", t0):
            assert send(server.url, secret, event) == 204
        receiver.wait_for(has("call.completed"))

        # A missed appointment: initiated, then nobody came before it ended.
        put_appointment(server, "gone1")
        window = appointment_around(real_now_ms(), before_ms=3 * HOUR_MS, after_ms=-HOUR_MS)
        r = httpx.put(
            f"{server.url}/api/admin/appointments/gone1",
            json={"doctorUid": "doc", "patientUid": "pat", **window, "status": "CONFIRMED"},
            headers=admin(server),
        )
        assert r.status_code == 200, r.text
        r = httpx.post(
            f"{server.url}/api/video-calls/initiate",
            json={"appointmentId": "gone1"},
            headers={"Authorization": tokens["doc"]},
        )
        assert r.status_code == 200, r.text
        receiver.wait_for(has("call.no_show", "gone1"))
        time.sleep(2)  # anything sent twice would arrive by now
        race1 = details(server, tokens["doc"], "race1")
        gone1 = details(server, tokens["doc"], "gone1")
    finally:
        stop_server(server)

    assert receiver.rejected == []
    told = of_call(receiver.delivered(), "race1")
    assert len({r.id for r in told}) == len(told)  # each message once
    assert [r.data["sequence"] for r in told] == list(range(1, len(told) + 1))
    assert Counter(r.type for r in told) == CONSULTATION
    first = [r.type for r in told]
    assert first[:3] == ["call.scheduled", "participant.joined", "call.waiting"]
    assert first.index("call.started") < first.index("call.completed")
    by_type = {r.type: r for r in told}
    waiting = by_type["call.waiting"].data["waiting"]
    assert waiting == {"role": "doctor", "since": race1["videoCall"]["doctorJoinedAt"]}
    completed = by_type["call.completed"].data
    # The very objects GET /api/video-calls/{ref} returns, then and now.
    assert completed["videoCall"] == race1["videoCall"]
    assert completed["presence"] == race1["presence"]
    assert completed["videoCall"]["duration"] == 600
    joins = [r.data["participant"] for r in told if r.type == "participant.joined"]
    assert [j["role"] for j in joins] == ["doctor", "patient"]
    assert joins[0]["at"] == race1["videoCall"]["doctorJoinedAt"]
    leaves = [r.data["participant"] for r in told if r.type == "participant.left"]
    assert [(p["role"], p["reason"]) for p in leaves] == [("patient", "left"), ("doctor", "left")]
    for receipt in told:
        text = str(receipt.body)
        assert "email" not in text and "firstName" not in text and "jwt" not in text
        assert receipt.body["timestamp"].endswith("Z")

    missed = of_call(receiver.delivered(), "gone1")
    no_show = [r for r in missed if r.type == "call.no_show"]
    assert len(no_show) == 1
    assert no_show[0].data["videoCall"]["status"] == "NO_SHOW"
    assert no_show[0].data["presence"] == gone1["presence"]
    assert no_show[0].data["videoCall"] == gone1["videoCall"]
    assert Counter(r.type for r in missed)["call.scheduled"] == 1


def test_retries_while_the_receiver_is_down_or_503_keep_the_id(tmp_path: Any) -> None:
    port = free_port()
    receiver = Receiver([whsec()], port, answer=lambda n: 503 if n < 2 else 204)
    env = hook_env(f"sqlite:///{tmp_path / 'v.db'}", receiver)
    assert cli(env, "migrate").returncode == 0
    server = start_server(env)
    try:
        tokens = seed(server)
        initiate(server, tokens)  # call.scheduled, while nothing listens on the port
        time.sleep(2.5)
        pending = messages(server, "pending")
        assert [m["type"] for m in pending] == ["call.scheduled"]
        assert pending[0]["attempts"] >= 1 and pending[0]["lastHttpStatus"] is None
        receiver.start()  # now up, answering 503 twice, then 204
        receiver.wait_for(has("call.scheduled"))
        seen = receiver.snapshot()
        assert [r.answered for r in seen] == [503, 503, 204]
        assert len({r.id for r in seen}) == 1  # one message, one webhook-id on every attempt
        time.sleep(1.5)
        (delivered,) = messages(server, "delivered")
        assert delivered["id"] == seen[0].id
        assert delivered["attempts"] >= 4 and delivered["lastHttpStatus"] == 204
        assert messages(server, "pending") == []
        logs = server.logs()
    finally:
        stop_server(server)
        receiver.stop()
    assert "webhook attempt failed" in logs and seen[0].id in logs
    for secret in receiver.secrets:
        assert secret not in logs
    assert "v1," not in logs


def test_410_stops_until_an_operator_retries(tmp_path: Any) -> None:
    answers = {"status": 410}
    receiver = Receiver([whsec()], free_port(), answer=lambda n: answers["status"])
    receiver.start()
    env = hook_env(f"sqlite:///{tmp_path / 'v.db'}", receiver)
    assert cli(env, "migrate").returncode == 0
    server = start_server(env)
    try:
        tokens = seed(server)
        initiate(server, tokens)
        time.sleep(4)  # several retry delays: a 410 is not retried
        assert [r.answered for r in receiver.snapshot()] == [410]
        (failed,) = messages(server, "failed")
        assert failed["type"] == "call.scheduled"
        assert failed["attempts"] == 1 and failed["lastHttpStatus"] == 410
        answers["status"] = 204
        r = httpx.post(
            f"{server.url}/api/admin/webhooks/messages/{failed['id']}/retry",
            headers=admin(server),
        )
        assert r.status_code == 200, r.text
        receiver.wait_for(lambda rs: len(rs) == 1)
        assert receiver.delivered()[0].id == failed["id"]
        again = httpx.post(
            f"{server.url}/api/admin/webhooks/messages/{failed['id']}/retry",
            headers=admin(server),
        )
        assert again.status_code == 409
        missing = httpx.post(
            f"{server.url}/api/admin/webhooks/messages/msg_none/retry", headers=admin(server)
        )
        assert missing.status_code == 404

        # Another failure, queued again from the command line.
        answers["status"] = 410
        put_appointment(server, "race2")
        r = httpx.post(
            f"{server.url}/api/video-calls/initiate",
            json={"appointmentId": "race2"},
            headers={"Authorization": tokens["doc"]},
        )
        assert r.status_code == 200
        deadline = time.monotonic() + 20
        while not messages(server, "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
        answers["status"] = 204
        done = cli(env, "webhooks", "retry-failed")
        assert done.returncode == 0, done.stderr
        assert "queued 1 failed webhook message(s)" in done.stdout
        receiver.wait_for(has("call.scheduled", "race2"))
    finally:
        stop_server(server)
        receiver.stop()


def test_killed_mid_attempt_and_restarted_loses_nothing(tmp_path: Any) -> None:
    receiver = Receiver([whsec()], free_port())
    receiver.hold = threading.Event()  # the first attempt hangs until released
    receiver.start()
    env = hook_env(f"sqlite:///{tmp_path / 'v.db'}", receiver)
    assert cli(env, "migrate").returncode == 0
    server = start_server(env)
    try:
        tokens = seed(server)
        initiate(server, tokens)
        deadline = time.monotonic() + 10
        while not receiver.snapshot() and time.monotonic() < deadline:
            time.sleep(0.05)
        (in_flight,) = receiver.snapshot()
        # While call.scheduled is in flight, the doctor joins: two more messages wait behind it.
        t0 = real_now_ms() - 5_000
        stream = Stream()
        secret = env["PROSODY_EVENTS_SECRET"]
        assert send(server.url, secret, stream.created(ROOM, "m1", t0)) == 204
        assert send(server.url, secret, stream.joined(ROOM, "m1", "s-doc", "doc", t0 + 1)) == 204
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
    finally:
        stop_server(server)
    receiver.hold.set()
    receiver.hold = None
    server = start_server(env)
    try:
        receiver.wait_for(has("call.waiting"), timeout=40)
    finally:
        stop_server(server)
        receiver.stop()
    told = of_call(receiver.delivered(), "race1")
    assert [r.type for r in told] == ["call.scheduled", "participant.joined", "call.waiting"]
    # At least once, under the same id: the cut-short attempt's message is sent again.
    assert told[0].id == in_flight.id


@pytest.mark.postgres
def test_two_replicas_deliver_each_message_once(
    postgres_database_url: str, receiver: Receiver
) -> None:
    env = hook_env(postgres_database_url, receiver)
    first, second = start_server(env), start_server(env)
    try:
        tokens = seed(first)
        initiate(first, tokens)
        secret = env["PROSODY_EVENTS_SECRET"]
        t0 = real_now_ms() - 700_000
        for n, event in enumerate(consultation(Stream(), ROOM, "doc", "pat", t0)):
            assert send((first, second)[n % 2].url, secret, event) == 204
        receiver.wait_for(has("call.completed"))
        time.sleep(3)  # a second delivery by the other replica would arrive by now
        assert messages(first, "pending") == []
    finally:
        stop_server(first)
        stop_server(second)
    seen = receiver.snapshot()
    ids = Counter(r.id for r in seen)
    assert max(ids.values()) == 1, ids
    told = of_call(seen, "race1")
    assert [r.data["sequence"] for r in told] == list(range(1, len(told) + 1))
    assert Counter(r.type for r in told) == CONSULTATION


def test_the_test_command_reports_the_receiver_s_answer(
    database_url: str, receiver: Receiver
) -> None:
    env = hook_env(database_url, receiver)
    sent = cli(env, "webhooks", "test")
    assert sent.returncode == 0, sent.stderr
    (receipt,) = receiver.delivered()
    assert receipt.body["type"] == "webhook.test" and receipt.body["data"] == {}
    assert f"webhook.test {receipt.id} delivered: HTTP 204" in sent.stdout
    receiver.answer = lambda n: 410
    refused = cli(env, "webhooks", "test")
    assert refused.returncode == 1 and "not delivered: HTTP 410" in refused.stderr
    off = cli({**env, "WEBHOOK_URL": ""}, "webhooks", "test")
    assert off.returncode == 2 and "WEBHOOK_URL is not set" in off.stderr
