"""The console's pure rules: which group an appointment is shown in, and per-doctor totals;
and the console's words for the service's values (service/console/console.js)."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import pytest

from service.domain.attention import STARTING_SOON_MS, Attention, Situation, attention
from service.domain.model import AppointmentStatus, CallStatus, Missing, Role, Verification
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


# --- the console's words ---------------------------------------------------------------------

CONSOLE_JS = Path(__file__).resolve().parents[2] / "service" / "console" / "console.js"


def _script() -> str:
    return CONSOLE_JS.read_text()


def _table(name: str) -> dict[str, str]:
    """A word table of console.js (`const NAME = { key: value, ... };`), one entry a line."""
    match = re.search(
        rf"^  const {name} = \{{\n(.*?)\n  \}};$", _script(), re.DOTALL | re.MULTILINE
    )
    assert match, f"console.js has no table {name}"
    lines = match.group(1).splitlines()
    entries = [re.fullmatch(r"    (\w+): (.+),", line) for line in lines]
    assert all(entries), lines
    return {e.group(1): e.group(2) for e in entries if e}


@pytest.mark.parametrize(
    ("table", "enum"),
    [
        ("MISSING", Missing),
        ("ROLES", Role),
        ("GROUPS", Attention),
        ("VERIFICATION", Verification),
    ],
)
def test_every_value_has_its_words_and_nothing_else_has(table: str, enum: type[StrEnum]) -> None:
    words = _table(table)
    assert list(words) == [member.value for member in enum]
    # Each value its own words: two values never read alike.
    assert len(set(words.values())) == len(words)


def test_the_words_are_read_only_through_their_tables() -> None:
    script = _script()
    # No fallback that gives a value a meaning of its own: `words()` shows an unknown value as
    # it came, and no lookup elsewhere falls back to invented words ("Nobody came" was one).
    words = re.search(r"function words\(table, value\) \{\n(.*?)\n  \}", script, re.DOTALL)
    assert words
    assert words.group(1).strip() == (
        "return Object.hasOwn(table, value) ? table[value] : String(value);"
    )
    assert not re.search(r"\}\[[\w.]+\]", script), "an inline table lookup"
    assert not re.search(r"\b(MISSING|ROLES)\[", script), "a lookup around words()"
    # `missing` is only ever shown in its words (or, for a call that is no no-show, a dash).
    shown = re.sub(r"\w+\.missing === null \?", "", script)
    in_words = re.findall(r"words\(MISSING, \w+\.missing\)", shown)
    assert len(in_words) == len(re.findall(r"\.missing\b", shown)) == 2
    # Roles and missing parties are compared nowhere: their tables say them.
    values = "|".join(sorted({*Role, *Missing}))
    assert not re.search(rf"[=!]==?\s*\"({values})\"", script)


def test_every_group_has_its_state_in_words() -> None:
    state = re.search(r"function stateText\(item, now\) \{\n(.*?)\n  \}\n", _script(), re.DOTALL)
    assert state
    cases = re.findall(r'case "(\w+)":', state.group(1))
    assert cases == [group.value for group in Attention]
    # An attention the console does not know is shown as it came, not called "Cancelled".
    assert "default:\n        return String(item.attention);" in state.group(1)
