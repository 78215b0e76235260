"""Status rules for video calls: which transitions are allowed and what each client action does.

Pure functions over values. The store turns `allowed_sources(target)` into one conditional
UPDATE (`... WHERE status IN (...)`), so two racing requests can never both win.
"""

from __future__ import annotations

from service.domain.model import Action, AppointmentStatus, CallStatus, Role

TRANSITIONS: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.SCHEDULED: frozenset(
        {CallStatus.IN_PROGRESS, CallStatus.CANCELLED, CallStatus.FAILED, CallStatus.NO_SHOW}
    ),
    CallStatus.IN_PROGRESS: frozenset({CallStatus.COMPLETED, CallStatus.FAILED}),
    # A retry after a technical failure; only `initiate` performs it.
    CallStatus.FAILED: frozenset({CallStatus.SCHEDULED}),
    CallStatus.COMPLETED: frozenset(),
    CallStatus.CANCELLED: frozenset(),
    CallStatus.NO_SHOW: frozenset(),
}

FINAL_STATUSES = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
# Statuses in which a participant may still get a token and join the room.
JOINABLE_STATUSES = frozenset({CallStatus.SCHEDULED, CallStatus.IN_PROGRESS})
INITIATE_APPOINTMENT_STATUSES = frozenset(
    {AppointmentStatus.CONFIRMED, AppointmentStatus.IN_PROGRESS}
)

# The target of every action except `join`, whose target depends on who has joined.
ACTION_TARGETS: dict[Action, CallStatus] = {
    Action.START: CallStatus.IN_PROGRESS,
    Action.END: CallStatus.COMPLETED,
    Action.CANCEL: CallStatus.CANCELLED,
    Action.FAILED: CallStatus.FAILED,
}

# Once Prosody reports a call, these client reports are audited but change nothing: the
# server saw who was in the room.
SERVER_OWNED_ACTIONS = frozenset({Action.JOIN, Action.START, Action.END})

# When the call reaches one of these, the appointment follows.
APPOINTMENT_FOLLOWS: dict[CallStatus, AppointmentStatus] = {
    CallStatus.IN_PROGRESS: AppointmentStatus.IN_PROGRESS,
    CallStatus.COMPLETED: AppointmentStatus.COMPLETED,
    CallStatus.NO_SHOW: AppointmentStatus.NO_SHOW,
}


FINAL_APPOINTMENT_STATUSES = frozenset(
    {AppointmentStatus.COMPLETED, AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW}
)


def appointment_sources(target: AppointmentStatus) -> frozenset[AppointmentStatus]:
    """An appointment follows its call unless it is already settled (or already there)."""
    return frozenset(AppointmentStatus) - FINAL_APPOINTMENT_STATUSES - {target}


def client_report_is_advisory(action: Action, tracked_by_server: bool, seen_together: bool) -> bool:
    """Whether a client's status report is only audited (it changes neither status nor times).

    Once Prosody reports a call, `join`, `start` and `end` are the server's to say. `cancel`
    and `failed` stay client decisions until Prosody has seen doctor and patient together:
    from then on a consultation was measured, and no client can turn it into CANCELLED or
    FAILED and take it out of the doctor's completed totals.
    """
    if not tracked_by_server:
        return False
    return action in SERVER_OWNED_ACTIONS or seen_together


def can_transition(current: CallStatus, target: CallStatus) -> bool:
    return target in TRANSITIONS[current]


def allowed_sources(target: CallStatus) -> frozenset[CallStatus]:
    """Every status from which `target` may be reached."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def can_initiate(appointment_status: AppointmentStatus) -> bool:
    return appointment_status in INITIATE_APPOINTMENT_STATUSES


def duration_seconds(started_at_ms: int | None, ended_at_ms: int) -> int:
    """Whole seconds between start and end, never negative (clocks and reports disagree)."""
    if started_at_ms is None:
        return 0
    # Half a second rounds up; store/repo.py::end_call computes the same in SQL.
    return max(0, (ended_at_ms - started_at_ms + 500) // 1000)


def join_field(role: Role) -> str | None:
    """Which first-join field a participant's `join` fills (`other` people fill none)."""
    return {Role.DOCTOR: "doctor_joined_at", Role.PATIENT: "patient_joined_at"}.get(role)
