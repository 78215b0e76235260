"""A deadline for a request's headers, enforced where they are parsed: in uvicorn's protocol.

uvicorn bounds the wait *between* requests (`timeout_keep_alive`) but not a request whose
headers arrive one byte at a time, nor a connection that sends nothing at all: either held a
connection (and a file descriptor) open indefinitely. No ASGI middleware can help, since the
app is called only once the headers are complete. This protocol (uvicorn's httptools one, the
one `http="auto"` picked) closes a connection whose request headers are not complete within
the deadline, counted from the connection's start or the request's first byte. The body has its
own deadline in the ASGI layer (service/api/middleware.py BodyLimit, answering 408).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_TIMEOUT_S = 10.0
# Set in each worker by create_app from BODY_READ_TIMEOUT: uvicorn builds the protocol from a
# class, in worker processes that it spawns, so the value cannot travel on the class itself.
_timeout_s = DEFAULT_TIMEOUT_S


def configure(timeout_s: float) -> None:
    global _timeout_s
    _timeout_s = timeout_s


class HeaderDeadlineProtocol(HttpToolsProtocol):
    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        # Nothing is answered: the request is not even a request yet.
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A kept-alive connection's next request: its headers get the whole deadline.
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
