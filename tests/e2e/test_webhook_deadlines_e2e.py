"""A clinic receiver that drips its answer (issue 33): the attempt ends at WEBHOOK_TIMEOUT, the
other calls' messages go out meanwhile, two replicas never have one message in flight at
once, and a huge error page is not read. Real server processes, a real socket receiver.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from harness.env import base_env
from tests.e2e.conftest import Server, free_port, start_server, stop_server
from tests.e2e.test_concurrency import put_appointment, seed
from tests.e2e.test_webhooks_e2e import whsec

TIMEOUT_S = 2.0
# The attempt is cut at TIMEOUT_S after its claim; the receiver sees the close a little later
# on a loaded two-core machine.
LATE_S = 3.0
HUGE = 30 * 1024 * 1024


@dataclass
class Request:
    webhook_id: str
    appointment_id: str
    started: float
    ended: float | None = None
    sent: int = 0


class DripReceiver:
    """Answers `slow*` appointments one byte every 0.2 s, `huge*` with a 30 MiB error page,
    and everything else 204. Records each request's span, as the receiver saw it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._listener.close()

    def of(self, prefix: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.appointment_id.startswith(prefix)]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        # A kept-alive connection that idles past its timeout, or a sender that left: done.
        with conn, contextlib.suppress(OSError):
            conn.settimeout(10)
            while not self._stop.is_set():
                raw = b""
                while b"\r\n\r\n" not in raw:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    raw += chunk
                head, _, body = raw.partition(b"\r\n\r\n")
                headers = dict(
                    line.decode().lower().split(": ", 1) for line in head.split(b"\r\n")[1:]
                )
                while len(body) < int(headers["content-length"]):
                    body += conn.recv(65536)
                data = json.loads(body)["data"]
                request = Request(headers["webhook-id"], data["appointmentId"], time.monotonic())
                with self._lock:
                    self.requests.append(request)
                if not self._answer(conn, request):
                    return

    def _answer(self, conn: socket.socket, request: Request) -> bool:
        """False once the sender has gone."""
        try:
            if request.appointment_id.startswith("slow"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                # Each byte well within any per-read timeout; the whole far beyond the deadline.
                # Watched every 50 ms, so the sender's close is seen at once.
                for tick in range(600):
                    readable, _, _ = select.select([conn], [], [], 0.05)
                    if readable and not conn.recv(1):
                        return False  # the sender closed: its attempt is over
                    if tick % 4 == 0:
                        conn.sendall(b"x")
                        request.sent += 1
                return False
            if request.appointment_id.startswith("huge"):
                conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % HUGE)
                chunk = b"e" * 65536
                while request.sent < HUGE:
                    conn.sendall(chunk)
                    request.sent += len(chunk)
                return True
            conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
            return True
        except OSError:
            return False
        finally:
            request.ended = time.monotonic()


@pytest.fixture
def receiver() -> Iterator[DripReceiver]:
    running = DripReceiver()
    running.start()
    yield running
    running.stop()


def wait_for(what: str, check: Callable[[], object], within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def initiate(server: Server, auth: str, appointment_id: str) -> None:
    put_appointment(server, appointment_id)
    r = httpx.post(
        f"{server.url}/api/video-calls/initiate",
        json={"appointmentId": appointment_id},
        headers={"Authorization": auth},
        timeout=30,
    )
    assert r.status_code == 200, r.text


@pytest.mark.postgres
def test_a_dripping_receiver_delays_nothing_and_no_message_is_in_flight_twice(
    postgres_database_url: str, receiver: DripReceiver
) -> None:
    env = base_env(
        DATABASE_URL=postgres_database_url,
        WEBHOOK_URL=receiver.url,
        WEBHOOK_SECRET=whsec(),
        WEBHOOK_TIMEOUT=str(TIMEOUT_S),
        # Retried soon after each cut attempt, so the two replicas keep competing for it.
        WEBHOOK_RETRY_DELAYS="0.3,0.3,0.3,0.3,0.3,0.3",
    )
    # Two replicas, one database: both senders claim from the same outbox.
    first = start_server(env)
    second = start_server(env)
    try:
        tokens = seed(first)
        initiate(first, tokens["doc"], "slow1")
        wait_for("the slow attempt", lambda: receiver.of("slow1"))
        # Another call's message, due while the slow attempt drips.
        initiate(second, tokens["doc"], "fast1")
        initiate(first, tokens["doc"], "huge1")
        wait_for("fast1 delivered", lambda: any(r.ended for r in receiver.of("fast1")))
        slow = receiver.of("slow1")[0]
        fast = receiver.of("fast1")[0]
        assert fast.ended is not None
        assert slow.ended is None or fast.ended < slow.ended, "fast1 waited for slow1"
        # The slow attempt is cut at its deadline, however steadily it drips.
        wait_for("the slow attempt's end", lambda: slow.ended is not None, within=TIMEOUT_S + 20)
        assert slow.ended is not None
        lasted = slow.ended - slow.started
        assert lasted < TIMEOUT_S + LATE_S, lasted
        assert slow.sent > 3  # it was dripping, not silent, when it was cut
        # Attempts go on (retries), from either replica, while the lease outlives each.
        wait_for("three slow attempts", lambda: len(receiver.of("slow1")) >= 3, within=60)
        spans = sorted(
            (r.started, r.ended if r.ended is not None else time.monotonic())
            for r in receiver.of("slow1")
        )
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end - 0.05, f"two attempts of one message overlapped: {spans}"
        # A 30 MiB error page: the status is taken, the page is not read.
        wait_for("huge1 answered", lambda: any(r.ended for r in receiver.of("huge1")))
        huge = receiver.of("huge1")[0]
        assert huge.sent < HUGE // 3, huge.sent
    finally:
        with contextlib.suppress(Exception):
            stop_server(second)
        stop_server(first)
