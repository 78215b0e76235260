"""Pure ASGI middleware: body size limit and the one-line-per-request JSON log."""

from __future__ import annotations

import json
import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024
log = logging.getLogger("service.request")


async def _send_json(send: Send, status: int, body: dict[str, str]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    """Reads the request body up front, refusing anything over the limit with 413.

    Every body this service accepts is small JSON, so buffering it is cheap, and the
    endpoints never see a half-read stream.
    """

    def __init__(
        self, app: ASGIApp, limit: int = MAX_BODY_BYTES, overrides: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.default_limit = limit
        # Exact paths with their own limit (Prosody's snapshots can be larger than 64 KiB).
        self.overrides = overrides or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
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
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send, limit: int) -> None:
        await _send_json(
            send,
            413,
            {
                "message": f"Request body is larger than {limit} bytes",
                "error": "payload_too_large",
            },
        )


class RequestLog:
    """One JSON line per request: method, path, status, duration. Never headers or query.

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
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
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
                    send, 500, {"message": "Internal server error", "error": "internal_error"}
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
