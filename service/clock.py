"""The service's one clock: integer milliseconds since the Unix epoch, like every stored time.

Everything in the service that needs "now" (stored times, token lifetimes, the signature
tolerance, the demo's day) asks here. That makes time one seam: tests replace the source once
(`tests/clock.py`) instead of patching `time` wherever it is read, and nothing in the record can
depend on which clock a code path happened to read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime


def _system_ms() -> int:
    return time.time_ns() // 1_000_000


_source: Callable[[], int] = _system_ms


def now_ms() -> int:
    return _source()


def now_s() -> int:
    """Whole seconds, for JWT claims and webhook timestamps."""
    return now_ms() // 1000


def today_utc() -> date:
    return datetime.fromtimestamp(now_ms() / 1000, UTC).date()


def use_source(source: Callable[[], int] | None) -> None:
    """Read time from `source` (epoch ms) from now on; None goes back to the system clock."""
    global _source
    _source = _system_ms if source is None else source
