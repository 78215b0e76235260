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


# What a corrected call's appointment becomes (a correction may undo a NO_SHOW entirely: the
# late clinic's call is SCHEDULED again, its appointment CONFIRMED, as before the sweep).
APPOINTMENT_CORRECTED: dict[CallStatus, AppointmentStatus] = {
    **APPOINTMENT_FOLLOWS,
    CallStatus.SCHEDULED: AppointmentStatus.CONFIRMED,
}

# The statuses the server derives from Prosody's events (service.domain.presence): a later
# derivation over more evidence may replace one outright (a correction). CANCELLED and FAILED
# are client decisions (`client_report_is_advisory`) and no derivation produces them.
DERIVED_STATUSES = frozenset(
    {CallStatus.SCHEDULED, CallStatus.IN_PROGRESS, CallStatus.COMPLETED, CallStatus.NO_SHOW}
)

FINAL_APPOINTMENT_STATUSES = frozenset(
    {AppointmentStatus.COMPLETED, AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW}
)


def appointment_sources(target: AppointmentStatus) -> frozenset[AppointmentStatus]:
    """An appointment follows its call unless it is already settled (or already there)."""
    return frozenset(AppointmentStatus) - FINAL_APPOINTMENT_STATUSES - {target}


def appointment_correction(
    before: CallStatus, after: CallStatus
) -> tuple[AppointmentStatus, frozenset[AppointmentStatus]] | None:
    """What a call's correction does to its appointment: `(target, sources)`, or None.

    The appointment moves only from the status the call's previous status gave it (a NO_SHOW
    appointment becomes COMPLETED with its call); one the clinic has changed since (cancelled,
    say) is the clinic's and stays."""
    target = APPOINTMENT_CORRECTED.get(after)
    source = APPOINTMENT_FOLLOWS.get(before)
    if target is None or target is source:
        return None
    if source is None:
        return target, appointment_sources(target)
    return target, frozenset({source})


def is_correction(current: CallStatus, derived: CallStatus) -> bool:
    """Whether a derived status replaces the stored one outright: both are the server's, they
    differ, and no allowed transition leads there (`status_path` is empty). Late events can
    show a NO_SHOW was kept, a COMPLETED call still going on, or a start that never was."""
    return (
        current is not derived
        and current in DERIVED_STATUSES
        and derived in DERIVED_STATUSES
        and not status_path(current, derived)
    )


def decided_at(status: CallStatus, ended_at: int | None, no_show_at: int | None) -> int | None:
    """When a stored status was decided, for the correction horizon: a COMPLETED call at its
    end, a NO_SHOW at the appointment's no-show deadline (`no_show_at`); an open call is not
    decided (None)."""
    if status is CallStatus.COMPLETED:
        return ended_at if ended_at is not None else no_show_at
    if status is CallStatus.NO_SHOW:
        return no_show_at
    return None


def within_correction_horizon(decided_at: int | None, at: int, horizon_ms: int) -> bool:
    """Whether a decision taken at `decided_at` (None: not final yet) may still be corrected at
    `at`: evidence older than the horizon cannot arrive any more (docs/events.md, "Late
    evidence"), so after it the record is final."""
    return decided_at is None or at - decided_at <= horizon_ms


def provisional_since(
    decided: int | None, heard_until: int | None, at: int, horizon_ms: int
) -> int | None:
    """The decision moment, when a settled call's decision is provisional, else None.

    A decision taken at `decided` is provisional while some Prosody host has not been heard
    past it (`heard_until`: the earliest of the hosts' last-heard times; None: no host known,
    nothing to wait for), so events that occurred before it may still be on their way (a spool
    replayed after an outage or a partition), until the correction horizon ends it anyway."""
    if decided is None or heard_until is None or heard_until >= decided:
        return None
    return decided if within_correction_horizon(decided, at, horizon_ms) else None


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


def client_start_allowed(
    current: CallStatus, doctor_joined_at: int | None, patient_joined_at: int | None
) -> bool:
    """A client's `start` needs both parties' `join` first (the API document: "when both
    doctor and patient join -> IN_PROGRESS"): one browser alone never opens a consultation.
    Anything but a SCHEDULED call is left to the transition rules (a repeat, or a 409)."""
    if current is not CallStatus.SCHEDULED:
        return True
    return doctor_joined_at is not None and patient_joined_at is not None


def can_transition(current: CallStatus, target: CallStatus) -> bool:
    return target in TRANSITIONS[current]


def status_path(current: CallStatus, target: CallStatus) -> list[CallStatus]:
    """The allowed steps from a stored status to a derived one (empty: leave it as it is).

    The server may learn of a whole call at once: SCHEDULED -> IN_PROGRESS -> COMPLETED.
    Anything else not allowed in one step (a final status, FAILED, or a derivation behind the
    stored status) leaves the status alone.
    """
    if current is target:
        return []
    if can_transition(current, target):
        return [target]
    if current is CallStatus.SCHEDULED and target is CallStatus.COMPLETED:
        return [CallStatus.IN_PROGRESS, CallStatus.COMPLETED]
    return []


def keeps_settled_end(stored: CallStatus, derived: CallStatus, final: bool = False) -> bool:
    """Whether a COMPLETED call keeps its stored end: against a derivation that is not
    COMPLETED (a client closed the call, or a correction is not allowed), or once `final`
    (past the correction horizon). `stored`: the status the call keeps after this derivation."""
    return stored is CallStatus.COMPLETED and (final or derived is not CallStatus.COMPLETED)


def allowed_sources(target: CallStatus) -> frozenset[CallStatus]:
    """Every status from which `target` may be reached."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def can_initiate(appointment_status: AppointmentStatus) -> bool:
    return appointment_status in INITIATE_APPOINTMENT_STATUSES


def whole_seconds(ms: float) -> int:
    """Milliseconds as whole seconds, half a second rounding up: every duration and wait.

    Not Python's round() (banker's rounding): the same milliseconds always give the same
    seconds, in the derivation, in a client's `end` and in every total.
    """
    return int((ms + 500) // 1000)


def duration_seconds(started_at_ms: int | None, ended_at_ms: int) -> int:
    """Whole seconds between start and end, never negative (clocks and reports disagree)."""
    if started_at_ms is None:
        return 0
    return max(0, whole_seconds(ended_at_ms - started_at_ms))


def client_end(started_at_ms: int | None, now_ms: int) -> tuple[int, int]:
    """`(ended_at, duration)` of a call a client ends at `now_ms`.

    A racing report may have stamped the start a moment after `now_ms` was read; the end is
    then the start, so a call never ends before it began. A call ended without a start (a
    client that skipped `start`) lasted nothing.
    """
    ended = now_ms if started_at_ms is None else max(now_ms, started_at_ms)
    return ended, duration_seconds(started_at_ms if started_at_ms is not None else ended, ended)


def join_field(role: Role) -> str | None:
    """Which first-join field a participant's `join` fills (`other` people fill none)."""
    return {Role.DOCTOR: "doctor_joined_at", Role.PATIENT: "patient_joined_at"}.get(role)
