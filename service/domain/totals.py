"""Per-doctor totals over a range of days: pure arithmetic over calls, one rule each.

- minutes: the summed duration of COMPLETED calls, in minutes;
- average duration: of COMPLETED calls, in seconds;
- no-show rate: NO_SHOW calls / (COMPLETED + NO_SHOW calls), the calls that were due and
  either happened or did not (cancelled, failed and open calls do not count either way);
- average patient wait: the record's `patient_wait` (the waiting-room rule of
  `domain/presence.py`: first presence, lobby included, to the start), over COMPLETED calls
  that have one, as `GET /api/video-calls/stats` averages it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from service.domain.model import CallStatus


@dataclass(frozen=True)
class CallFacts:
    day: str
    doctor_uid: str
    status: CallStatus
    duration: int | None
    patient_wait: int | None  # seconds, as the record has it


@dataclass
class DoctorTotals:
    doctor_uid: str
    calls: int = 0
    completed: int = 0
    no_shows: int = 0
    seconds: int = 0
    waits: list[int] = field(default_factory=list)

    @property
    def minutes(self) -> float:
        return round(self.seconds / 60, 1)

    @property
    def average_duration(self) -> float | None:
        return round(self.seconds / self.completed, 1) if self.completed else None

    @property
    def no_show_rate(self) -> float | None:
        due = self.completed + self.no_shows
        return round(self.no_shows / due, 3) if due else None

    @property
    def average_patient_wait(self) -> float | None:
        return round(sum(self.waits) / len(self.waits), 1) if self.waits else None


def totals(facts: list[CallFacts]) -> list[DoctorTotals]:
    """One entry per doctor with any call, ordered by uid."""
    by_doctor: dict[str, DoctorTotals] = {}
    for fact in facts:
        entry = by_doctor.setdefault(fact.doctor_uid, DoctorTotals(fact.doctor_uid))
        entry.calls += 1
        if fact.status is CallStatus.COMPLETED:
            entry.completed += 1
            entry.seconds += fact.duration or 0
            if fact.patient_wait is not None:
                entry.waits.append(fact.patient_wait)
        elif fact.status is CallStatus.NO_SHOW:
            entry.no_shows += 1
    return [by_doctor[uid] for uid in sorted(by_doctor)]


def days_between(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def minutes_per_day(facts: list[CallFacts], first: str, last: str) -> list[tuple[str, float]]:
    """Completed minutes on every day of the range (zeros included, for a chart)."""
    seconds = dict.fromkeys(days_between(first, last), 0)
    for fact in facts:
        if fact.status is CallStatus.COMPLETED and fact.day in seconds:
            seconds[fact.day] += fact.duration or 0
    return [(day, round(total / 60, 1)) for day, total in seconds.items()]
