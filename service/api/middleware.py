"""Pure ASGI middleware: body limits and deadlines, the one-line-per-request JSON log and
the security headers of every answer."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import RETRY_AFTER_S, AppError

MAX_BODY_BYTES = 64 * 1024
log = logging.getLogger("service.request")
# On every answer: many carry patient data or Jitsi tokens, which no shared cache, browser
# history or Referer header should keep; nothing the service sends is to be sniffed into HTML.
# A route's own Cache-Control stands (the console's static files, which hold no data, are
# `no-cache`: revalidated, service/api/console.py); every other answer is `no-store`.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
NO_STORE = (b"cache-control", b"no-store")
_SECURITY_NAMES = {name for name, _ in SECURITY_HEADERS}


async def _send_json(
    send: Send,
    status: int,
    body: dict[str, str],
    *,
    close: bool = False,
    retry_after: bool = False,
) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:
        # The body was not read to its end: the connection cannot carry another request.
        headers.append((b"connection", b"close"))
    if retry_after:
        headers.append((b"retry-after", RETRY_AFTER_S.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


# Judges a request on its headers alone, before its body is read (the receivers' signature
# headers, peer and token): raises an AppError to refuse it.
Gate = Callable[[Request], None]
# Bodies over the default limit (Prosody's snapshots, up to 4 MiB) held at once per worker;
# one more is a 503 with Retry-After, so a crowd of big uploads cannot take the memory.
MAX_BIG_BODIES = 4


class BodyLimit:
    """Reads the request body up front, refusing anything over the limit (413), any body not
    complete within `read_timeout` seconds (408), and a big body while MAX_BIG_BODIES others are
    held (503). A path with a gate is judged on its headers before a byte of its body is read.

    Every body this service accepts is small JSON, so buffering it is cheap, and the
    endpoints never see a half-read stream. A refusal closes the connection: the rest of the
    body is never read.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int = MAX_BODY_BYTES,
        overrides: dict[str, int] | None = None,
        gates: Sequence[tuple[str, str, Gate]] = (),
        read_timeout: float = 10.0,
        big_bodies: int = MAX_BIG_BODIES,
    ) -> None:
        self.app = app
        self.default_limit = limit
        # Exact paths with their own limit (Prosody's snapshots can be larger than 64 KiB).
        self.overrides = overrides or {}
        # (method, path, gate): the exact path, or every path under it when it ends with "/".
        # Other methods go on to the router (its 405 with Allow).
        self.gates = tuple(gates)
        self.read_timeout = read_timeout
        self.big_bodies = anyio.Semaphore(big_bodies)

    def _gate(self, method: str, path: str) -> Gate | None:
        for gated, prefix, gate in self.gates:
            if method != gated:
                continue
            if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
                return gate
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        gate = self._gate(scope["method"], scope["path"])
        if gate is not None:
            try:
                gate(Request(scope))
            except AppError as exc:
                await _send_json(
                    send, exc.status, {"message": exc.message, "error": exc.code}, close=True
                )
                return
        limit = self.overrides.get(scope["path"], self.default_limit)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(
                        send, 400, {"message": "Invalid Content-Length", "error": "bad_request"}
                    )
                    return
                if declared > limit:
                    await self._too_large(send, limit)
                    return
        async with contextlib.AsyncExitStack() as held:
            body = await self._read(receive, send, limit, held)
            if body is None:
                return
            delivered = False

            async def replay() -> Message:
                nonlocal delivered
                if not delivered:
                    delivered = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            # A big body's slot is held until the app is done with it (parsed, stored).
            await self.app(scope, replay, send)

    async def _read(
        self, receive: Receive, send: Send, limit: int, held: contextlib.AsyncExitStack
    ) -> bytes | None:
        """The whole body, or None once a refusal has been sent (or the client left)."""
        chunks: list[bytes] = []
        size = 0
        big = False
        with anyio.move_on_after(self.read_timeout) as deadline:
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await self._too_large(send, limit)
                    return None
                if size > self.default_limit and not big:
                    try:
                        self.big_bodies.acquire_nowait()
                    except anyio.WouldBlock:
                        await _send_json(
                            send,
                            503,
                            {
                                "message": "Too many large uploads at once, retry shortly",
                                "error": "busy",
                            },
                            close=True,
                            retry_after=True,
                        )
                        return None
                    held.callback(self.big_bodies.release)
                    big = True
                chunks.append(chunk)
                more = message.get("more_body", False)
        if deadline.cancelled_caught:
            await _send_json(
                send,
                408,
                {
                    "message": f"Request body not received within {self.read_timeout:g} seconds",
                    "error": "request_timeout",
                },
                close=True,
            )
            return None
        return b"".join(chunks)

    async def _too_large(self, send: Send, limit: int) -> None:
        await _send_json(
            send,
            413,
            {
                "message": f"Request body is larger than {limit} bytes",
                "error": "payload_too_large",
            },
            close=True,
        )


class RequestLog:
    """One JSON line per request: method, path, status, duration. Never headers or query.

    It also puts SECURITY_HEADERS (and NO_STORE unless the route chose) on every answer,
    its own and the app's.

    It is also the error boundary: an unhandled exception is logged once (scrubbed) and the
    client gets a generic JSON 500, never a traceback.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        response_started = False
        request_id = uuid.uuid4().hex[:16]

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                kept = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in _SECURITY_NAMES
                ]
                if not any(name.lower() == b"cache-control" for name, _ in kept):
                    kept.append(NO_STORE)
                message["headers"] = [
                    *kept,
                    *SECURITY_HEADERS,
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception(
                "unhandled error",
                extra={"fields": {"path": scope.get("path", ""), "request_id": request_id}},
            )
            status = 500
            if not response_started:
                await _send_json(
                    send_wrapper,
                    500,
                    {"message": "Internal server error", "error": "internal_error"},
                )
        finally:
            path = scope.get("path", "")
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": scope.get("method"),
                        "path": path,
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                        "request_id": request_id,
                    }
                },
            )
