"""Slow uploads against the real `videocalls serve` (issue 33): 100 stalled uploads to each of
Prosody's receivers are each closed within BODY_READ_TIMEOUT, the worker's memory hardly
grows, a token request meanwhile answers as usual, and a client dripping its headers is closed.

Every socket is on loopback; every loop is bounded in time.
"""

from __future__ import annotations

import base64
import contextlib
import json
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.env import base_env
from service.clock import now_s
from service.config import load_settings
from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.test_concurrency import seed

DEADLINE_S = 3.0
# Closed within the deadline, give or take a loaded two-core machine.
CLOSE_MARGIN_S = 7.0
UPLOADS = 100
MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@dataclass
class Upload:
    sock: socket.socket
    pending: bytes
    opened: float
    closed: float | None = None
    answer: bytes = b""
    last_drip: float = 0.0
    drips: int = field(default=0)

    @property
    def status(self) -> int | None:
        head = self.answer.split(b"\r\n", 1)[0].split()
        return int(head[1]) if len(head) >= 2 and head[1].isdigit() else None


def request_head(port: int, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def open_upload(port: int, head: bytes, first: bytes) -> Upload:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setblocking(False)
    return Upload(sock, head + first, time.monotonic())


def drive(uploads: list[Upload], until: float, drip_every: float = 1.0) -> None:
    """Send each upload's first part, then one byte per `drip_every`, until the server closes
    it (or `until`). Reads whatever the server answers."""
    selector = selectors.DefaultSelector()
    for upload in uploads:
        selector.register(upload.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, upload)
    open_count = len(uploads)
    while open_count and time.monotonic() < until:
        for key, events in selector.select(timeout=0.2):
            current: Upload = key.data
            if events & selectors.EVENT_READ:
                try:
                    data = current.sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    data = b""  # closed, abruptly
                if data:
                    current.answer += data
                    continue
                current.closed = time.monotonic()
                selector.unregister(current.sock)
                current.sock.close()
                open_count -= 1
                continue
            if events & selectors.EVENT_WRITE and current.pending:
                try:
                    sent = current.sock.send(current.pending[:262144])
                    current.pending = current.pending[sent:]
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    pass
                if not current.pending:
                    selector.modify(current.sock, selectors.EVENT_READ, current)
        now = time.monotonic()
        for upload in uploads:
            due = now - upload.last_drip >= drip_every
            if upload.closed is None and not upload.pending and due:
                upload.last_drip = now
                upload.drips += 1
                # A closing socket may refuse the byte; its close is seen by the select.
                with contextlib.suppress(OSError):
                    upload.sock.send(b" ")
    for upload in uploads:
        if upload.closed is None:
            upload.sock.close()


def token_times(server: Server, auth: str, count: int, pause: float) -> list[float]:
    times = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(count):
            started = time.monotonic()
            response = client.post(
                "/api/video-calls/initiate",
                json={"appointmentId": "race1"},
                headers={"Authorization": auth},
            )
            assert response.status_code == 200, response.text
            times.append(time.monotonic() - started)
            time.sleep(pause)
    return times


def v1_head(port: int, declared: int) -> bytes:
    # Well formed and fresh: what anyone can forge without the secret. Only the body's
    # signature would tell, and the body is what the attacker never finishes.
    fake = base64.b64encode(b"\0" * 32).decode()
    return request_head(
        port,
        "/api/prosody/events",
        {
            "Content-Type": "application/json",
            "Content-Length": str(declared),
            "webhook-id": "evt-slow",
            "webhook-timestamp": str(now_s()),
            "webhook-signature": f"v1,{fake}",
        },
    )


def test_slow_uploads_are_closed_and_memory_stays_bounded(database_url: str) -> None:
    env = base_env(DATABASE_URL=database_url, BODY_READ_TIMEOUT=str(DEADLINE_S))
    server = start_server(env)
    try:
        port = int(server.url.rsplit(":", 1)[1])
        token = load_settings(env).event_sync_token
        tokens = seed(server)
        usual = token_times(server, tokens["doc"], 10, 0.05)
        before = rss_mib(server.process.pid)

        uploads = [
            # 3 MiB declared, 1 MiB sent at once, then a byte a second.
            open_upload(port, v1_head(port, 3 * MIB), b"{" + b" " * (MIB - 1))
            for _ in range(UPLOADS)
        ] + [
            open_upload(
                port,
                request_head(
                    port,
                    "/api/event-sync/events/muc-room-created",
                    {
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                        "Content-Length": "60000",
                    },
                ),
                b"{" + b" " * 29_999,
            )
            for _ in range(UPLOADS)
        ]
        peak = [before]
        meanwhile: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak.append(rss_mib(server.process.pid))
                time.sleep(0.1)

        def tokens_meanwhile() -> None:
            time.sleep(1.0)  # the uploads are all open and stalled by then
            meanwhile.extend(token_times(server, tokens["doc"], 5, 0.2))

        threads = [threading.Thread(target=sample), threading.Thread(target=tokens_meanwhile)]
        for thread in threads:
            thread.start()
        try:
            drive(uploads, until=time.monotonic() + DEADLINE_S + CLOSE_MARGIN_S + 5)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)

        lasted = [u.closed - u.opened for u in uploads if u.closed is not None]
        assert len(lasted) == len(uploads), f"{len(uploads) - len(lasted)} uploads still open"
        assert max(lasted) < DEADLINE_S + CLOSE_MARGIN_S, max(lasted)
        v1_statuses = sorted({u.status for u in uploads[:UPLOADS]}, key=str)
        sync_statuses = {u.status for u in uploads[UPLOADS:]}
        # A few big bodies are held until their deadline (408); the rest are refused at once.
        assert set(v1_statuses) <= {408, 503}, v1_statuses
        assert sync_statuses == {408}, sync_statuses
        grown = max(peak) - before
        assert grown < 50, f"worker grew {grown:.0f} MiB under {2 * UPLOADS} stalled uploads"
        assert len(meanwhile) == 5
        assert max(meanwhile) < max(1.0, 10 * max(usual)), (usual, meanwhile)
        print(
            f"slow uploads: rss {before:.0f} -> peak {max(peak):.0f} MiB; longest upload "
            f"{max(lasted):.1f} s; token requests usual max {max(usual) * 1000:.0f} ms, "
            f"meanwhile max {max(meanwhile) * 1000:.0f} ms"
        )
    finally:
        stop_server(server)


def test_a_client_dripping_its_headers_is_closed(database_url: str) -> None:
    server = start_server(base_env(DATABASE_URL=database_url, BODY_READ_TIMEOUT=str(DEADLINE_S)))
    try:
        port = int(server.url.rsplit(":", 1)[1])
        dripper = open_upload(port, b"POST /api/prosody/events HTTP/1.1\r\nHost: x\r\n", b"")
        # One header byte at a time, each well within any per-read timeout.
        dripper.pending = dripper.pending + b"X-Slow: "
        silent = Upload(socket.create_connection(("127.0.0.1", port)), b"", time.monotonic())
        silent.sock.setblocking(False)
        silent.last_drip = float("inf")  # sends nothing at all
        drive(
            [dripper, silent],
            until=time.monotonic() + DEADLINE_S + CLOSE_MARGIN_S + 5,
            drip_every=0.5,
        )
        for client in (dripper, silent):
            assert client.closed is not None, "still open"
            assert client.closed - client.opened < DEADLINE_S + CLOSE_MARGIN_S
        assert dripper.drips >= 3  # it was dripping, not idle, when it was closed
        # The server is fine afterwards.
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    finally:
        stop_server(server)


def test_forwarded_allow_ips_decides_whose_address_is_logged(database_url: str) -> None:
    """`videocalls serve` hands FORWARDED_ALLOW_IPS to uvicorn: a trusted proxy's
    X-Forwarded-For becomes request.client (the log, the throttle); anyone else's is ignored."""
    for trusted, expected in (("127.0.0.1", "203.0.113.5"), ("192.0.2.1", "127.0.0.1")):
        env = base_env(DATABASE_URL=database_url, FORWARDED_ALLOW_IPS=trusted)
        server = start_server(env)
        try:
            r = httpx.get(
                f"{server.url}/api/admin/video-calls",
                headers={"Authorization": "Bearer " + "w" * 64, "X-Forwarded-For": "203.0.113.5"},
                timeout=10,
            )
            assert r.status_code == 403
        finally:
            logs = server.logs()
            stop_server(server)
        rejected = [line for line in logs.splitlines() if "admin key rejected" in line]
        assert len(rejected) == 1, logs
        assert json.loads(rejected[0])["client"] == expected, rejected[0]
