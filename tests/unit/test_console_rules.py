"""The console's pure rules: which group an appointment is shown in, and per-doctor totals."""

from __future__ import annotations

import pytest

from service.domain.attention import STARTING_SOON_MS, Attention, Situation, attention
from service.domain.model import AppointmentStatus, CallStatus, Role
from service.domain.totals import CallFacts, minutes_per_day, totals
from tests.clock import FrozenClock, shift_days

MINUTE = 60_000


def situation(
    call: CallStatus | None = CallStatus.SCHEDULED,
    appointment: AppointmentStatus = AppointmentStatus.CONFIRMED,
    *,
    now: int,
    starts_in: int = 60 * MINUTE,
    length: int = 30 * MINUTE,
    present: frozenset[Role] = frozenset(),
) -> Situation:
    return Situation(appointment, call, now + starts_in, now + starts_in + length, present)


@pytest.mark.parametrize(
    ("call", "appointment", "expected"),
    [
        (CallStatus.CANCELLED, AppointmentStatus.CONFIRMED, Attention.CANCELLED),
        (None, AppointmentStatus.CANCELLED, Attention.CANCELLED),
        (CallStatus.FAILED, AppointmentStatus.CONFIRMED, Attention.FAILED),
        (CallStatus.NO_SHOW, AppointmentStatus.NO_SHOW, Attention.MISSED),
        (CallStatus.COMPLETED, AppointmentStatus.COMPLETED, Attention.COMPLETED),
        (None, AppointmentStatus.COMPLETED, Attention.COMPLETED),
        (CallStatus.IN_PROGRESS, AppointmentStatus.IN_PROGRESS, Attention.IN_PROGRESS),
    ],
)
def test_a_settled_or_running_call_is_grouped_by_its_status(
    clock: FrozenClock, call: CallStatus | None, appointment: AppointmentStatus, expected: Attention
) -> None:
    # Whoever is present and whenever it is: the status decides.
    s = situation(call, appointment, now=clock.ms, present=frozenset({Role.PATIENT}))
    assert attention(s, clock.ms) is expected


def test_someone_in_the_room_before_the_start_is_waiting(clock: FrozenClock) -> None:
    for who in (Role.DOCTOR, Role.PATIENT):
        s = situation(now=clock.ms, starts_in=-5 * MINUTE, present=frozenset({who}))
        assert attention(s, clock.ms) is Attention.WAITING
    # Others (an interpreter, say) alone are not a party waiting.
    s = situation(now=clock.ms, starts_in=2 * 3_600_000, present=frozenset({Role.OTHER}))
    assert attention(s, clock.ms) is Attention.UPCOMING


def test_time_decides_for_an_empty_room(clock: FrozenClock) -> None:
    now = clock.ms
    assert attention(situation(now=now, starts_in=STARTING_SOON_MS + 1), now) is Attention.UPCOMING
    assert attention(situation(now=now, starts_in=STARTING_SOON_MS), now) is Attention.STARTING_SOON
    assert attention(situation(None, now=now, starts_in=-MINUTE), now) is Attention.STARTING_SOON
    over = situation(now=now, starts_in=-31 * MINUTE, length=30 * MINUTE)
    assert attention(over, now) is Attention.MISSED


def test_totals_per_doctor(clock: FrozenClock) -> None:
    day = clock.day("UTC")
    facts = [
        CallFacts(day, "b", CallStatus.COMPLETED, 600, 60),  # the patient waited 60 s
        CallFacts(day, "b", CallStatus.COMPLETED, 300, 0),  # the doctor was there first
        CallFacts(day, "b", CallStatus.NO_SHOW, None, 900),  # gave up: not a completed wait
        CallFacts(day, "b", CallStatus.CANCELLED, None, None),
        CallFacts(day, "a", CallStatus.SCHEDULED, None, None),
    ]
    a, b = totals(facts)
    assert (a.doctor_uid, a.calls, a.minutes, a.no_show_rate, a.average_duration) == (
        "a",
        1,
        0.0,
        None,
        None,
    )
    assert b.calls == 4 and b.completed == 2 and b.no_shows == 1
    assert b.minutes == 15.0
    assert b.average_duration == 450.0
    assert b.no_show_rate == round(1 / 3, 3)
    assert b.average_patient_wait == 30.0


def test_minutes_per_day_fills_every_day(clock: FrozenClock) -> None:
    today = clock.day("UTC")
    first = shift_days(today, -2)
    facts = [
        CallFacts(today, "a", CallStatus.COMPLETED, 90, None),
        CallFacts(first, "a", CallStatus.COMPLETED, 30, None),
        CallFacts(first, "a", CallStatus.NO_SHOW, None, None),
        CallFacts(shift_days(today, 1), "a", CallStatus.COMPLETED, 600, None),  # outside
    ]
    assert minutes_per_day(facts, first, today) == [
        (first, 0.5),
        (shift_days(today, -1), 0.0),
        (today, 1.5),
    ]
