"""The tests' one source of time.

In-process tests run on a frozen `service.clock` (the autouse `clock` fixture in
`tests/conftest.py`): "now" is read once from the real clock when the test starts and only moves
when the test moves it, so a sweep "one millisecond before the deadline" means exactly that.
It starts from the real clock because libraries we do not own (PyJWT's `exp` check,
firebase-admin) read the real one.

Tests that start a real server process cannot freeze it; they read the real clock once and
build appointments with `midday_window`, which cannot close or cross midnight during a test.

Dates, times and epochs are built from "now" here, never written as literals in a test, so the
suite passes on any day (CI runs it again under faketime, 400 days ahead and on summer-time
change days).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


def real_now_ms() -> int:
    return time.time_ns() // 1_000_000


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


def local(ms: int, zone: str) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(zone))


def local_day(ms: int, zone: str) -> str:
    return local(ms, zone).date().isoformat()


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


def midday_window(now_ms: int) -> dict[str, str]:
    """06:00-18:00 today in a fixed-offset zone where it is about noon at `now_ms`.

    For tests against a real server process, whose clock runs on: the appointment is under
    way, will not end for at least five and a half hours, and does not cross midnight, whatever
    the time of day the test runs. (`Etc/GMT-N` is N hours *ahead* of UTC, by POSIX's sign.)
    """
    utc = datetime.fromtimestamp(now_ms / 1000, UTC)
    offset = round(12 - (utc.hour + utc.minute / 60))  # -12 ... +12
    zone = "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
    return {
        "appointmentDate": local_day(now_ms, zone),
        "startTime": "06:00",
        "endTime": "18:00",
        "timezone": zone,
    }


def shift_days(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()
