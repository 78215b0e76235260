"""The event_sync receiver over real sockets: the peer checked is the socket's address.

Linux routes all of 127.0.0.0/8 over loopback, so a client bound to 127.0.0.2 is a second
machine as far as the server's socket can tell. The server admits only 127.0.0.1/32.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.clock import real_now_ms
from harness.eventstream import event_sync_consultation
from service.store import uow
from service.store.models import AuditEvent, ProsodyEvent, ProsodyHost, VideoCall
from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.test_concurrency import seed

ROOM = "appointment_race1"


def _second_loopback_works() -> bool:
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.2", 0))
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _second_loopback_works(), reason="127.0.0.2 cannot be bound here (not Linux loopback)"
)


@pytest.fixture
def narrow(env: dict[str, str]) -> Iterator[Server]:
    running = start_server({**env, "EVENT_SYNC_ALLOWED_NETWORKS": "127.0.0.1/32"})
    yield running
    stop_server(running)


def client_from(address: str, server: Server) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, timeout=30)


def test_only_allowed_socket_addresses_are_heard(narrow: Server) -> None:
    server = narrow
    tokens = seed(server)
    r = httpx.post(
        f"{server.url}/api/video-calls/initiate",
        json={"appointmentId": "race1"},
        headers={"Authorization": tokens["doc"]},
    )
    assert r.status_code == 200, r.text
    token = server.env["EVENT_SYNC_TOKEN"]
    auth = {"Authorization": f"Bearer {token}"}
    stream = event_sync_consultation(ROOM, "doc", "pat", real_now_ms() // 1000)
    audits_before = uow.run(lambda: AuditEvent.select().count())

    def post(
        client: httpx.Client,
        kind: str,
        payload: dict[str, Any],
        extra: dict[str, str] | None = None,
    ) -> Any:
        headers = auth | (extra or {})
        return client.post(f"/api/event-sync/events/{kind}", json=payload, headers=headers)

    with client_from("127.0.0.2", server) as outsider:
        for kind, payload in stream:
            response = post(outsider, kind, payload)
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "network_not_allowed"
        # A forwarding header naming the allowed address changes nothing: the socket decides.
        response = post(outsider, *stream[0], {"X-Forwarded-For": "127.0.0.1"})
        assert response.status_code == 403
    with client_from("127.0.0.1", server) as allowed:
        # From the allowed address too: what a proxy forwarded came from elsewhere.
        response = post(allowed, *stream[0], {"X-Forwarded-For": "127.0.0.1"})
        assert response.status_code == 403
    assert uow.run(lambda: ProsodyEvent.select().count()) == 0
    assert uow.run(lambda: ProsodyHost.select().count()) == 0
    assert uow.run(lambda: AuditEvent.select().count()) == audits_before
    assert uow.run(lambda: VideoCall.get(VideoCall.appointment_id == "race1").status) == (
        "SCHEDULED"
    )

    with client_from("127.0.0.1", server) as prosody:
        response = post(prosody, *stream[0])
        assert response.status_code == 200, response.text
    assert uow.run(lambda: ProsodyEvent.select().count()) == 1

    logs = server.logs()
    assert "network_not_allowed" in logs and "127.0.0.2" in logs
    assert token not in logs
