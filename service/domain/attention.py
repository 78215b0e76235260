"""What needs an operator's attention: each appointment of a day falls in exactly one group.

Pure: the console's Today view and its tests share this one rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from service.domain.model import AppointmentStatus, CallStatus, Role

# An appointment this close to its start (or already past it, with nobody there) is "soon".
STARTING_SOON_MS = 15 * 60_000


class Attention(StrEnum):
    """In the order the console shows them: what needs action first."""

    WAITING = "waiting"
    IN_PROGRESS = "in_progress"
    STARTING_SOON = "starting_soon"
    UPCOMING = "upcoming"
    COMPLETED = "completed"
    MISSED = "missed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Situation:
    appointment_status: AppointmentStatus
    call_status: CallStatus | None
    starts_at: int
    ends_at: int
    # Doctor and/or patient in the room right now (no one counts while the call is running).
    present: frozenset[Role]


def attention(s: Situation, now_ms: int) -> Attention:
    call, appointment = s.call_status, s.appointment_status
    if call is CallStatus.CANCELLED or appointment is AppointmentStatus.CANCELLED:
        return Attention.CANCELLED
    if call is CallStatus.FAILED:
        return Attention.FAILED
    if call is CallStatus.NO_SHOW or appointment is AppointmentStatus.NO_SHOW:
        return Attention.MISSED
    if call is CallStatus.COMPLETED or appointment is AppointmentStatus.COMPLETED:
        return Attention.COMPLETED
    if call is CallStatus.IN_PROGRESS:
        return Attention.IN_PROGRESS
    if s.present & {Role.DOCTOR, Role.PATIENT}:
        return Attention.WAITING
    if now_ms >= s.ends_at:
        # Over, and nobody came: the sweeper marks it NO_SHOW once the grace period is up.
        return Attention.MISSED
    if s.starts_at - now_ms <= STARTING_SOON_MS:
        return Attention.STARTING_SOON
    return Attention.UPCOMING
