"""Which messages a call's change calls for: a pure function of what was told and what is.

`plan` compares the call as it is now (`CallFacts`) with what the clinic has been told about
it (`Told`) and returns the messages still owed, in the order they are to be numbered, and the
new `Told`. Running it twice on the same facts owes nothing the second time, so every hook may
call it after any change without sending a message twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from service.domain.model import CallStatus, Role

STATUS_TYPES = {
    CallStatus.SCHEDULED: "call.scheduled",
    CallStatus.IN_PROGRESS: "call.started",
    CallStatus.COMPLETED: "call.completed",
    CallStatus.NO_SHOW: "call.no_show",
    CallStatus.CANCELLED: "call.cancelled",
    CallStatus.FAILED: "call.failed",
}
WAITING = "call.waiting"
JOINED = "participant.joined"
LEFT = "participant.left"
RECORDING_STARTED = "recording.started"
RECORDING_STOPPED = "recording.stopped"
TEST = "webhook.test"
ALL_TYPES = (
    *STATUS_TYPES.values(),
    WAITING,
    JOINED,
    LEFT,
    RECORDING_STARTED,
    RECORDING_STOPPED,
    TEST,
)
PARTIES = (Role.DOCTOR.value, Role.PATIENT.value)


@dataclass(frozen=True)
class SessionFacts:
    session: str
    role: str
    joined_at: int | None
    left_at: int | None
    end_reason: str | None
    counted: bool = True


@dataclass(frozen=True)
class RecordingFacts:
    session: str
    started_at: int
    ended_at: int | None
    mode: str | None


@dataclass(frozen=True)
class CallFacts:
    status: CallStatus
    started_at: int | None = None
    ended_at: int | None = None
    duration: int | None = None
    doctor_joined_at: int | None = None
    patient_joined_at: int | None = None
    doctor_presence: int | None = None
    patient_presence: int | None = None
    missing: str | None = None
    sessions: tuple[SessionFacts, ...] = ()
    # The record's waiting room (domain/presence.py): who waits, in the room or the lobby.
    waiting_role: str | None = None
    waiting_since: int | None = None
    recordings: tuple[RecordingFacts, ...] = ()

    def outcome(self) -> list[Any]:
        """The part of a final record a repair may correct: a change is told again."""
        if self.status is CallStatus.COMPLETED:
            return [
                self.started_at,
                self.ended_at,
                self.duration,
                self.doctor_presence,
                self.patient_presence,
            ]
        if self.status is CallStatus.NO_SHOW:
            return [self.missing, self.doctor_presence, self.patient_presence]
        return []


@dataclass(frozen=True)
class Told:
    """What the clinic has been told about one call (stored as JSON beside the outbox)."""

    status: str | None = None
    started: bool = False
    outcome: list[Any] = field(default_factory=list)
    waiting: str | None = None
    joined: dict[str, int] = field(default_factory=dict)
    left: dict[str, list[Any]] = field(default_factory=dict)
    # Per recorder session: [started_at, ended_at or None] as last told.
    recorded: dict[str, list[Any]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "status": self.status,
                "started": self.started,
                "outcome": self.outcome,
                "waiting": self.waiting,
                "joined": self.joined,
                "left": self.left,
                "recorded": self.recorded,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> Told:
        data = json.loads(raw or "{}")
        return cls(
            status=data.get("status"),
            started=bool(data.get("started", False)),
            outcome=list(data.get("outcome", [])),
            waiting=data.get("waiting"),
            joined=dict(data.get("joined", {})),
            left=dict(data.get("left", {})),
            recorded=dict(data.get("recorded", {})),
        )


@dataclass(frozen=True)
class Planned:
    """One message owed: its type and what `data` carries beyond the call's record."""

    type: str
    extra: dict[str, Any] = field(default_factory=dict)


def plan(told: Told, facts: CallFacts) -> tuple[list[Planned], Told]:
    out: list[Planned] = []
    status = facts.status
    joined, left = dict(told.joined), dict(told.left)
    waiting, started = told.waiting, told.started

    # A (re)scheduled call comes first: it opens the story the other messages continue.
    if status is CallStatus.SCHEDULED and told.status != status.value:
        out.append(Planned(STATUS_TYPES[status]))
        # After a failed call is started afresh, its waiting is told again.
        waiting, started = None, False

    out.extend(_participants(facts, joined, left))
    recorded = dict(told.recorded)
    out.extend(_recordings(facts, recorded))

    if status is CallStatus.SCHEDULED:
        role, since = _waiting(facts)
        if role is not None and waiting != role:
            out.append(Planned(WAITING, {"waiting": {"role": role, "since": since}}))
            waiting = role

    if status is not CallStatus.SCHEDULED and told.status != status.value:
        # The server may learn of a whole call at once: it still started before it completed.
        if status is CallStatus.COMPLETED and not started and facts.started_at is not None:
            out.append(Planned(STATUS_TYPES[CallStatus.IN_PROGRESS]))
        out.append(Planned(STATUS_TYPES[status]))
    elif told.status == status.value and facts.outcome() != told.outcome:
        # A repair corrected a record already told: tell the new state.
        out.append(Planned(STATUS_TYPES[status]))
    if any(p.type == STATUS_TYPES[CallStatus.IN_PROGRESS] for p in out):
        started = True

    return out, Told(
        status=status.value,
        started=started or status is CallStatus.IN_PROGRESS,
        outcome=facts.outcome(),
        waiting=waiting,
        joined=joined,
        left=left,
        recorded=recorded,
    )


def _recordings(facts: CallFacts, recorded: dict[str, list[Any]]) -> list[Planned]:
    """Recordings started or stopped (or corrected) since last told, by time."""
    owed: list[tuple[int, int, Planned]] = []
    for r in facts.recordings:
        told = recorded.get(r.session)
        if told == [r.started_at, r.ended_at]:
            continue
        recorded[r.session] = [r.started_at, r.ended_at]
        recording = {"startedAt": r.started_at, "endedAt": r.ended_at, "mode": r.mode}
        if told is None or told[0] != r.started_at:
            owed.append((r.started_at, 0, Planned(RECORDING_STARTED, {"recording": recording})))
        if r.ended_at is not None:
            owed.append((r.ended_at, 1, Planned(RECORDING_STOPPED, {"recording": recording})))
    owed.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in owed]


def _participants(
    facts: CallFacts, joined: dict[str, int], left: dict[str, list[Any]]
) -> list[Planned]:
    """Joins and leaves of doctor and patient sessions not told yet (or corrected), by time."""
    owed: list[tuple[int, int, str, Planned]] = []
    for s in facts.sessions:
        if not s.counted or s.role not in PARTIES or s.joined_at is None:
            continue
        if joined.get(s.session) != s.joined_at:
            joined[s.session] = s.joined_at
            participant = {"role": s.role, "at": s.joined_at}
            owed.append((s.joined_at, 0, s.session, Planned(JOINED, {"participant": participant})))
        if s.left_at is not None and left.get(s.session) != [s.left_at, s.end_reason]:
            left[s.session] = [s.left_at, s.end_reason]
            participant = {"role": s.role, "at": s.left_at, "reason": s.end_reason}
            owed.append((s.left_at, 1, s.session, Planned(LEFT, {"participant": participant})))
    owed.sort(key=lambda item: (item[0], item[1], item[2]))
    return [item[3] for item in owed]


def _waiting(facts: CallFacts) -> tuple[str | None, int | None]:
    """The record's waiting party (room or lobby, domain/presence.py); for a call only client
    reports describe, the party that joined while the other has not yet."""
    if facts.waiting_role is not None:
        return facts.waiting_role, facts.waiting_since
    doctor, patient = facts.doctor_joined_at, facts.patient_joined_at
    if doctor is not None and patient is None:
        return Role.DOCTOR.value, doctor
    if patient is not None and doctor is None:
        return Role.PATIENT.value, patient
    return None, None


def with_iso_times(planned: Planned, iso: Callable[[int | None], str | None]) -> Planned:
    """Times in `extra` as ISO 8601 strings (the planner works in milliseconds)."""
    extra = dict(planned.extra)
    if "participant" in extra:
        extra["participant"] = {**extra["participant"], "at": iso(extra["participant"]["at"])}
    if "waiting" in extra:
        extra["waiting"] = {**extra["waiting"], "since": iso(extra["waiting"]["since"])}
    if "recording" in extra:
        r = extra["recording"]
        extra["recording"] = {**r, "startedAt": iso(r["startedAt"]), "endedAt": iso(r["endedAt"])}
    return replace(planned, extra=extra)
