"""Reject before reading (issue 33): the receivers judge headers before a byte of the body,
every body has a deadline (408), and big bodies are limited in number at once (503).

Driven as ASGI, with a `receive` the test controls: it can tell whether the body was asked for
at all, and withhold it. tests/e2e/test_hostile_network_e2e.py does the same over sockets.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send

from harness.env import base_env
from service.api.middleware import BodyLimit
from service.app import create_app
from service.clock import now_s
from service.config import load_settings
from service.receiver.signing import sign
from tests.api.conftest import Api

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def scope(path: str, headers: dict[str, str], client: str = "127.0.0.1") -> Message:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": (client, 50000),
        "server": ("127.0.0.1", 8000),
    }


class Exchange:
    """One request: records whether the app read the body, and what it answered."""

    def __init__(self, chunks: list[bytes], stall_after: bool = False) -> None:
        self.chunks = list(chunks)
        self.stall_after = stall_after
        self.reads = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.reads += 1
        if self.chunks:
            chunk = self.chunks.pop(0)
            more = bool(self.chunks) or self.stall_after
            return {"type": "http.request", "body": chunk, "more_body": more}
        # A client that stopped sending: waits until the server gives up on it.
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def error(self) -> str:
        body = b"".join(m.get("body", b"") for m in self.sent[1:])
        return str(json.loads(body)["error"])


async def run(app: Any, path: str, headers: dict[str, str], exchange: Exchange) -> Exchange:
    with anyio.fail_after(30):  # bounded, whatever the app does
        await app(scope(path, headers), exchange.receive, exchange.send)
    return exchange


def signed_headers(secret: str, body: bytes, **overrides: str) -> dict[str, str]:
    at = now_s()
    headers = {
        "content-type": "application/json",
        "content-length": str(len(body)),
        "webhook-id": "evt-1",
        "webhook-timestamp": str(at),
        "webhook-signature": sign(secret, "evt-1", at, body),
    }
    headers.update(overrides)
    return headers


@pytest.mark.parametrize(
    "overrides",
    [
        {"webhook-signature": ""},
        {"webhook-timestamp": "12"},  # stale
        {"webhook-timestamp": "soon"},
        {"webhook-id": ""},
        {"webhook-signature": "v2,abc"},
    ],
)
async def test_the_v1_receiver_refuses_bad_headers_without_reading_the_body(
    api: Api, overrides: dict[str, str]
) -> None:
    secret = api.settings.prosody_events_secrets[0]
    body = b"x" * 1_000_000
    headers = {k: v for k, v in signed_headers(secret, body, **overrides).items() if v}
    exchange = await run(
        api.client.app, "/api/prosody/events", headers, Exchange([body], stall_after=True)
    )
    assert (exchange.status, exchange.error) == (401, "invalid_signature")
    assert exchange.reads == 0
    assert exchange.headers[b"connection"] == b"close"


async def test_event_sync_refuses_a_wrong_token_or_peer_without_reading_the_body(
    api: Api,
) -> None:
    path = "/api/event-sync/events/muc-room-created"
    wrong = {"authorization": "Bearer " + "z" * 64, "content-length": "10"}
    exchange = await run(api.client.app, path, wrong, Exchange([b"{}"], stall_after=True))
    assert (exchange.status, exchange.reads) == (403, 0)
    right = {"authorization": f"Bearer {api.settings.event_sync_token}", "content-length": "10"}
    outsider = Exchange([b"{}"], stall_after=True)
    with anyio.fail_after(30):
        await api.client.app(
            scope(path, right, client="203.0.113.9"), outsider.receive, outsider.send
        )
    assert (outsider.status, outsider.error, outsider.reads) == (403, "network_not_allowed", 0)


async def test_a_body_slower_than_the_deadline_is_408(database_url: str) -> None:
    settings = load_settings(base_env(DATABASE_URL=database_url, BODY_READ_TIMEOUT="0.5"))
    app = create_app(settings)
    secret = settings.prosody_events_secrets[0]
    body = b'{"id": "evt-1"}' + b" " * 100
    started = anyio.current_time()
    exchange = await run(
        app,
        "/api/prosody/events",
        signed_headers(secret, body),
        Exchange([body[:10]], stall_after=True),
    )
    took = anyio.current_time() - started
    assert (exchange.status, exchange.error) == (408, "request_timeout")
    assert exchange.headers[b"connection"] == b"close"
    assert exchange.headers[b"cache-control"] == b"no-store"  # RequestLog's, outside
    # At the deadline, not long after it, even on a loaded machine.
    assert 0.45 <= took < 5, took
    # Any body, not only the receivers'.
    slow = await run(
        app,
        "/api/video-calls/initiate",
        {"content-length": "30"},
        Exchange([b'{"appointmentId"'], stall_after=True),
    )
    assert (slow.status, slow.error) == (408, "request_timeout")


async def test_big_bodies_are_limited_in_number_at_once() -> None:
    handled: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        handled.append(len(message["body"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limit = BodyLimit(app, limit=1000, overrides={"/big": 1_000_000}, big_bodies=2, read_timeout=30)
    big = b"b" * 5000
    holders = [Exchange([big[:2000]], stall_after=True) for _ in range(2)]
    async with anyio.create_task_group() as tasks:
        for holder in holders:
            tasks.start_soon(limit, scope("/big", {}), holder.receive, holder.send)
        await anyio.sleep(0.1)
        # Both slots are held by stalled uploads: a third big body is refused at once...
        third = Exchange([big[:2000], big[2000:]])
        await run(limit, "/big", {}, third)
        assert (third.status, third.error) == (503, "busy")
        assert third.headers[b"retry-after"].isdigit()
        # ...while small bodies go on as before.
        small = await run(limit, "/big", {}, Exchange([b"s" * 500]))
        assert small.status == 204
        tasks.cancel_scope.cancel()
    # A slot comes back when its request ends (here: cancelled, as a disconnect would).
    again = await run(limit, "/big", {}, Exchange([big[:2000], big[2000:]]))
    assert again.status == 204
    assert handled == [500, 5000]
