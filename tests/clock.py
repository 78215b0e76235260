"""The tests' one source of time.

In-process tests run on a frozen `service.clock` (the autouse `clock` fixture in
`tests/conftest.py`): "now" is read once from the real clock when the test starts and only moves
when the test moves it, so a sweep "one millisecond before the deadline" means exactly that.
It starts from the real clock because libraries we do not own (PyJWT's `exp` check,
firebase-admin) read the real one.

Tests that start a real server process cannot freeze it; they read the real clock once
(`harness.clock.real_now_ms`) and build appointments with `harness.clock.midday_window`, which
cannot close or cross midnight during a test.

Dates, times and epochs are built from "now" here, never written as literals in a test, so the
suite passes on any day (CI runs it again under faketime, 400 days ahead and on summer-time
change days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from harness.clock import local, local_day

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


@dataclass
class FrozenClock:
    """A clock that stands still until told to move; install with `service.clock.use_source`."""

    ms: int

    def __call__(self) -> int:
        return self.ms

    @property
    def s(self) -> int:
        return self.ms // 1000

    def advance(self, ms: int) -> int:
        self.ms += ms
        return self.ms

    def set(self, ms: int) -> None:
        self.ms = ms

    def day(self, zone: str = "UTC", days: int = 0) -> str:
        """The local date `days` after today in `zone`, as YYYY-MM-DD."""
        return local_day(self.ms + days * DAY_MS, zone)


def appointment_around(
    now_ms: int,
    zone: str = "Europe/Berlin",
    before_ms: int = 2 * HOUR_MS,
    after_ms: int = 2 * HOUR_MS,
) -> dict[str, str]:
    """An appointment's date and times (the admin API's fields) from `before_ms` before `now_ms`
    to `after_ms` after it, in `zone`.

    The window may cross midnight (an end before the start means the next day, as the service
    reads it) and a summer-time change; the end is whole minutes, rounded up. On the one night a
    year when a local hour repeats, the service reads an end in that hour as its first pass, so
    the window is then an hour shorter: tests that need the exact end read it from the store.
    """
    start = local(now_ms - before_ms, zone)
    end = local(now_ms + after_ms + MINUTE_MS - 1, zone)
    return {
        "appointmentDate": start.date().isoformat(),
        "startTime": start.strftime("%H:%M"),
        "endTime": end.strftime("%H:%M"),
        "timezone": zone,
    }


def shift_days(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()
