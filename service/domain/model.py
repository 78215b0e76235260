"""Domain vocabulary shared by every layer: statuses, roles, actions, end reasons."""

from __future__ import annotations

from enum import StrEnum


class CallStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    NO_SHOW = "NO_SHOW"


class AppointmentStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    NO_SHOW = "NO_SHOW"


class Role(StrEnum):
    """A person's role in one appointment. `other` is anyone who is neither party."""

    DOCTOR = "doctor"
    PATIENT = "patient"
    OTHER = "other"


class Action(StrEnum):
    """What a client may report through PATCH /api/video-calls/{id}/status."""

    JOIN = "join"
    START = "start"
    END = "end"
    CANCEL = "cancel"
    FAILED = "failed"


class EndReason(StrEnum):
    """How an occupant session ended (contract reasons plus the service's own repairs)."""

    LEFT = "left"
    KICKED = "kicked"
    ROOM_DESTROYED = "room_destroyed"
    UNKNOWN = "unknown"
    PROSODY_RESTART = "prosody_restart"
    SNAPSHOT_REPAIR = "snapshot_repair"
    SWEEPER = "sweeper"
    HOST_SILENT = "host_silent"
    # How a knock in the lobby ended (lobby.left).
    ADMITTED = "admitted"
    DENIED = "denied"


def room_name_for(appointment_id: str) -> str:
    """Jitsi lower-cases room names, so the stored name is lower-case too."""
    return f"appointment_{appointment_id}".lower()
