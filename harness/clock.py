"""The real clock, as tests and benches read it around a running server process, and an
appointment window such a process accepts whatever the time of day (`midday_window`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def real_now_ms() -> int:
    return time.time_ns() // 1_000_000


def local(ms: int, zone: str) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(zone))


def local_day(ms: int, zone: str) -> str:
    return local(ms, zone).date().isoformat()


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
