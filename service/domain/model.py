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


class Missing(StrEnum):
    """Who did not come to a NO_SHOW call (the stored and served `missing`)."""

    DOCTOR = "doctor"
    PATIENT = "patient"
    BOTH = "both"
    # Both came, but never at the same time.
    NONE = "none"


def missing_party(*, doctor_came: bool, patient_came: bool) -> Missing:
    """Who is missing, from who came (the derivation, the sweeper and the console use it)."""
    if doctor_came and patient_came:
        return Missing.NONE
    if doctor_came:
        return Missing.PATIENT
    if patient_came:
        return Missing.DOCTOR
    return Missing.BOTH


def role_in(doctor_uid: str, patient_uid: str, uid: str | None) -> Role:
    """A person's role in one appointment or call, by uid (None: an anonymous occupant)."""
    if uid is None:
        return Role.OTHER
    if uid == doctor_uid:
        return Role.DOCTOR
    if uid == patient_uid:
        return Role.PATIENT
    return Role.OTHER


class PresenceSource(StrEnum):
    """Where a deployment's record of who was in the room comes from (PRESENCE_SOURCE)."""

    # Prosody's events (the signed module, event_sync or both): clients' join, start and end
    # are audited and change nothing.
    SERVER = "server"
    # Browsers' reports only: every call says so (`verification`).
    CLIENTS = "clients"


class Verification(StrEnum):
    """Who measured a call's status, times and duration (the served `verification`)."""

    SERVER = "server"
    CLIENT_REPORTED = "client_reported"


def verification_of(tracked_by_server: bool) -> Verification:
    """A call is the server's measurement once Prosody tracks it (from its creation, with
    PRESENCE_SOURCE=server); otherwise only clients said what happened."""
    return Verification.SERVER if tracked_by_server else Verification.CLIENT_REPORTED


class Settled(StrEnum):
    """How settled a final call is (the served `settled`; null while the call is open)."""

    FINAL = "final"
    # Decided while a Prosody host had not been heard past the decision: late events may
    # still correct it (docs/events.md, "Late evidence").
    PROVISIONAL = "provisional"


def settled_of(status: str, provisional_since: int | None) -> Settled | None:
    """A call's `settled`: none while SCHEDULED or IN_PROGRESS."""
    if status in (CallStatus.SCHEDULED, CallStatus.IN_PROGRESS):
        return None
    return Settled.FINAL if provisional_since is None else Settled.PROVISIONAL


class ReportOutcome(StrEnum):
    """What a client's status report did to its call (the served `clientReports[].outcome`)."""

    APPLIED = "applied"
    # Audited only: the server decides (PRESENCE_SOURCE=server, or Prosody saw the call).
    ADVISORY = "advisory"
    # Not an allowed transition (a 409 to the client).
    REFUSED = "refused"


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
