"""The service's clock: integer milliseconds since the Unix epoch, like every stored time."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
