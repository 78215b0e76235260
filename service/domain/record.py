"""What a derivation changes in a call's stored record: one typed value the store writes.

The derivation (service.domain.presence) says what Prosody's events show; this module decides
what of it is saved, given what the call already holds. A COMPLETED record keeps its end
when a later derivation has none and the status is not corrected (a client closed the call),
or once past the correction horizon; otherwise the derivation is the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.domain import rules
from service.domain.model import CallStatus, Missing, Role
from service.domain.presence import CallDerivation, LobbyVisit, RecordingSpan


@dataclass(frozen=True)
class SettledEnd:
    """The call's status after this derivation and its stored end; `final`: past the
    correction horizon (rules.within_correction_horizon), so a COMPLETED end stays."""

    status: CallStatus
    ended_at: int | None
    duration: int | None
    duration_uncertain: bool
    final: bool = False


@dataclass(frozen=True)
class PresenceRecord:
    """Every presence field of a call row (store/video_calls.py::save_presence writes these)."""

    doctor_joined_at: int | None
    patient_joined_at: int | None
    started_at: int | None
    ended_at: int | None
    duration: int | None
    doctor_presence: int
    patient_presence: int
    missing: Missing | None
    # Counted sessions with no end yet: the sweeper's "calls with someone in the room".
    open_sessions: int
    duration_uncertain: bool
    waiting_role: Role | None
    waiting_since: int | None
    doctor_wait: int | None
    patient_wait: int | None
    lobby_visits: tuple[LobbyVisit, ...]
    recordings: tuple[RecordingSpan, ...]
    # The hosts whose snapshots and restarts are applied to the call although they do not
    # list its room (see `watched_hosts`).
    watched_hosts: tuple[str, ...]


def watched_hosts(derived: CallDerivation) -> tuple[str, ...]:
    """The hosts whose snapshots and restarts can change the record without listing its
    room (sessions.session_hosts); none once the call is settled: its counted record no
    longer moves, and the next event derives it anyway."""
    return derived.hosts if derived.status in rules.JOINABLE_STATUSES else ()


def presence_record(derived: CallDerivation, stored: SettledEnd) -> PresenceRecord:
    keep = rules.keeps_settled_end(stored.status, derived.status, stored.final)
    return PresenceRecord(
        doctor_joined_at=derived.doctor_joined_at,
        patient_joined_at=derived.patient_joined_at,
        started_at=derived.started_at,
        ended_at=stored.ended_at if keep else derived.ended_at,
        duration=stored.duration if keep else derived.duration,
        doctor_presence=derived.doctor_presence_s,
        patient_presence=derived.patient_presence_s,
        missing=derived.missing,
        open_sessions=derived.open_sessions,
        duration_uncertain=stored.duration_uncertain if keep else derived.duration_uncertain,
        waiting_role=derived.waiting.role if derived.waiting else None,
        waiting_since=derived.waiting.since if derived.waiting else None,
        doctor_wait=derived.doctor_wait_s,
        patient_wait=derived.patient_wait_s,
        lobby_visits=derived.lobby,
        recordings=derived.recordings,
        watched_hosts=watched_hosts(derived),
    )


def outcome(
    status: CallStatus,
    started_at: int | None,
    ended_at: int | None,
    duration: int | None,
    missing: str | None,
) -> dict[str, object]:
    """What a correction's audit shows of a record, before and after."""
    return {
        "status": status.value,
        "started_at": started_at,
        "ended_at": ended_at,
        "duration": duration,
        "missing": missing,
    }
