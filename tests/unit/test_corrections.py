"""The correction rules (service/domain/rules.py, issue 30): which stored statuses late
evidence replaces, what the appointment does, the horizon and provisional settling."""

from __future__ import annotations

import pytest

from service.domain import rules
from service.domain.model import AppointmentStatus as A
from service.domain.model import CallStatus as C
from service.domain.model import Settled, settled_of

H = 1_000


@pytest.mark.parametrize(
    ("current", "derived", "expected"),
    [
        (C.NO_SHOW, C.SCHEDULED, True),
        (C.NO_SHOW, C.IN_PROGRESS, True),
        (C.NO_SHOW, C.COMPLETED, True),
        (C.COMPLETED, C.IN_PROGRESS, True),
        (C.COMPLETED, C.NO_SHOW, True),
        (C.IN_PROGRESS, C.SCHEDULED, True),
        # An allowed transition is a transition, not a correction.
        (C.SCHEDULED, C.NO_SHOW, False),
        (C.SCHEDULED, C.COMPLETED, False),
        (C.IN_PROGRESS, C.COMPLETED, False),
        (C.COMPLETED, C.COMPLETED, False),
        # Client decisions stay.
        (C.CANCELLED, C.COMPLETED, False),
        (C.FAILED, C.IN_PROGRESS, False),
    ],
)
def test_what_late_evidence_replaces(current: C, derived: C, expected: bool) -> None:
    assert rules.is_correction(current, derived) is expected


def test_the_appointment_moves_back_only_from_what_the_call_gave_it() -> None:
    assert rules.appointment_correction(C.NO_SHOW, C.COMPLETED) == (
        A.COMPLETED,
        frozenset({A.NO_SHOW}),
    )
    assert rules.appointment_correction(C.NO_SHOW, C.SCHEDULED) == (
        A.CONFIRMED,
        frozenset({A.NO_SHOW}),
    )
    assert rules.appointment_correction(C.COMPLETED, C.IN_PROGRESS) == (
        A.IN_PROGRESS,
        frozenset({A.COMPLETED}),
    )
    # The same appointment status: nothing to move.
    assert rules.appointment_correction(C.COMPLETED, C.COMPLETED) is None


def test_the_horizon_counts_from_the_decision() -> None:
    assert rules.decided_at(C.COMPLETED, 500, 900) == 500
    assert rules.decided_at(C.COMPLETED, None, 900) == 900
    assert rules.decided_at(C.NO_SHOW, None, 900) == 900
    assert rules.decided_at(C.IN_PROGRESS, None, 900) is None
    assert rules.within_correction_horizon(None, 10**12, H)
    assert rules.within_correction_horizon(900, 900 + H, H)
    assert not rules.within_correction_horizon(900, 900 + H + 1, H)


def test_a_decision_is_provisional_until_every_host_is_heard_past_it() -> None:
    # No host known: nothing to wait for.
    assert rules.provisional_since(900, None, 1_000, H) is None
    assert rules.provisional_since(900, 899, 1_000, H) == 900
    assert rules.provisional_since(900, 900, 1_000, H) is None
    # Past the horizon it is final whatever the hosts.
    assert rules.provisional_since(900, 0, 900 + H + 1, H) is None
    assert rules.provisional_since(None, 0, 1_000, H) is None


def test_settled_is_said_of_settled_calls_only() -> None:
    assert settled_of(C.SCHEDULED, None) is None
    assert settled_of(C.IN_PROGRESS, 5) is None
    assert settled_of(C.NO_SHOW, None) is Settled.FINAL
    assert settled_of(C.COMPLETED, 5) is Settled.PROVISIONAL
