"""The status rules, exhaustively: every pair of statuses, every action."""

from __future__ import annotations

import itertools

import pytest

from service.domain import rules
from service.domain.model import Action, AppointmentStatus, CallStatus, Role

ALLOWED = {
    (CallStatus.SCHEDULED, CallStatus.IN_PROGRESS),
    (CallStatus.SCHEDULED, CallStatus.CANCELLED),
    (CallStatus.SCHEDULED, CallStatus.FAILED),
    (CallStatus.SCHEDULED, CallStatus.NO_SHOW),
    (CallStatus.IN_PROGRESS, CallStatus.COMPLETED),
    (CallStatus.IN_PROGRESS, CallStatus.FAILED),
    (CallStatus.FAILED, CallStatus.SCHEDULED),
}


@pytest.mark.parametrize("current,target", list(itertools.product(CallStatus, CallStatus)))
def test_transition_table(current: CallStatus, target: CallStatus) -> None:
    assert rules.can_transition(current, target) == ((current, target) in ALLOWED)


def test_allowed_sources_invert_the_table() -> None:
    for target in CallStatus:
        expected = {s for s, t in ALLOWED if t == target}
        assert rules.allowed_sources(target) == expected


def test_final_statuses() -> None:
    assert {CallStatus.COMPLETED, CallStatus.CANCELLED, CallStatus.NO_SHOW} == rules.FINAL_STATUSES


def test_every_non_join_action_has_a_target() -> None:
    assert set(rules.ACTION_TARGETS) == set(Action) - {Action.JOIN}


@pytest.mark.parametrize("status", list(AppointmentStatus))
def test_initiate_needs_confirmed_or_in_progress(status: AppointmentStatus) -> None:
    assert rules.can_initiate(status) == (
        status in (AppointmentStatus.CONFIRMED, AppointmentStatus.IN_PROGRESS)
    )


def test_join_fields() -> None:
    assert rules.join_field(Role.DOCTOR) == "doctor_joined_at"
    assert rules.join_field(Role.PATIENT) == "patient_joined_at"
    assert rules.join_field(Role.OTHER) is None


@pytest.mark.parametrize(
    "started,ended,expected",
    [(None, 5000, 0), (1000, 1000, 0), (1000, 2499, 1), (1000, 2500, 2), (5000, 1000, 0)],
)
def test_duration_rounds_and_never_goes_negative(
    started: int | None, ended: int, expected: int
) -> None:
    assert rules.duration_seconds(started, ended) == expected


def test_a_client_start_needs_both_parties_joined() -> None:
    scheduled = CallStatus.SCHEDULED
    assert not rules.client_start_allowed(scheduled, None, None)
    assert not rules.client_start_allowed(scheduled, 1_000, None)
    assert not rules.client_start_allowed(scheduled, None, 1_000)
    assert rules.client_start_allowed(scheduled, 1_000, 2_000)
    # Any other status is the transition rules' to answer (a repeat, or invalid_transition).
    for status in set(CallStatus) - {scheduled}:
        assert rules.client_start_allowed(status, None, None)
