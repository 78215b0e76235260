"""Wrong shared keys, per client address: each one logged, and an address that keeps guessing
is refused (429) for a while before its key is even compared.

The address is `request.client.host`: uvicorn rewrites it from `X-Forwarded-For` only for
proxies in FORWARDED_ALLOW_IPS (service/cli.py), so behind a trusted proxy it is the real
client and a client cannot choose it. The count lives in each worker process: a guesser
spread over N workers gets N times the allowance, still a few dozen guesses a minute.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from service.clock import now_ms

log = logging.getLogger("service.api")

# Ten mistakes a minute is generous for an operator pasting a key; a guesser gets nowhere.
ALLOWED_FAILURES = 10
WINDOW_MS = 60_000
# Addresses remembered at once: a flood from many addresses cannot grow the table unbounded
# (the oldest entries go first).
MAX_ADDRESSES = 10_000


@dataclass
class _Failures:
    since: int
    count: int
    warned: bool = False


class KeyThrottle:
    def __init__(self, allowed: int = ALLOWED_FAILURES, window_ms: int = WINDOW_MS) -> None:
        self.allowed = allowed
        self.window_ms = window_ms
        self._by_address: OrderedDict[str, _Failures] = OrderedDict()

    def _current(self, address: str, at: int) -> _Failures | None:
        entry = self._by_address.get(address)
        if entry is not None and at - entry.since >= self.window_ms:
            del self._by_address[address]
            return None
        return entry

    def wait_s(self, address: str) -> int:
        """Seconds `address` must wait before its key is compared again (0: go ahead)."""
        at = now_ms()
        entry = self._current(address, at)
        if entry is None or entry.count < self.allowed:
            return 0
        return -(-(entry.since + self.window_ms - at) // 1000)

    def failed(self, address: str, what: str, path: str) -> None:
        """Count and log one rejected key from `address`."""
        at = now_ms()
        entry = self._current(address, at)
        if entry is None:
            entry = self._by_address[address] = _Failures(since=at, count=0)
            while len(self._by_address) > MAX_ADDRESSES:
                self._by_address.popitem(last=False)
        entry.count += 1
        fields = {"client": address[:64], "path": path[:200], "failures": entry.count}
        if entry.count < self.allowed:
            log.warning(f"{what} rejected", extra={"fields": fields})
        elif not entry.warned:
            # One line when the throttle starts, not one per guess: a flood cannot flood the log.
            entry.warned = True
            log.warning(
                f"{what} rejected, address throttled",
                extra={"fields": {**fields, "window_s": self.window_ms // 1000}},
            )
