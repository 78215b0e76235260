"""A real HTTP receiver for the service's webhooks, verifying them with `standardwebhooks`.

It runs in the test process on its own port; `answer` decides each response (a status, and
optionally a hold until released, to catch the service mid-attempt).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Receipt:
    id: str
    answered: int
    body: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.body["type"])

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.body["data"]
        return data


@dataclass
class Receiver:
    secrets: list[str]
    port: int
    answer: Callable[[int], int] = lambda n: 204
    receipts: list[Receipt] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    hold: threading.Event | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    # Every secret of a rotation must verify on its own.
                    bodies = [Webhook(s).verify(raw, headers) for s in receiver.secrets]
                except WebhookVerificationError as exc:
                    receiver.rejected.append(str(exc))
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._lock:
                    status = receiver.answer(len(receiver.receipts))
                    hold = receiver.hold
                    # A held request is answered (if ever) to a sender that is gone: -1.
                    answered = status if hold is None else -1
                    receiver.receipts.append(Receipt(headers["webhook-id"], answered, bodies[0]))
                if hold is not None:
                    hold.wait(60)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def snapshot(self) -> list[Receipt]:
        with self._lock:
            return list(self.receipts)

    def delivered(self) -> list[Receipt]:
        return [r for r in self.snapshot() if 200 <= r.answered < 300]

    def wait_for(
        self, check: Callable[[list[Receipt]], bool], timeout: float = 40
    ) -> list[Receipt]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check(self.delivered()):
                return self.delivered()
            time.sleep(0.1)
        raise AssertionError(
            f"webhooks not received in {timeout} s: "
            + json.dumps([(r.type, r.answered) for r in self.snapshot()])
        )
