"""Presence: the call record derived from Prosody's events, as a pure function of their set.

`derive_call` deduplicates by event id and reasons only about event times, so any permutation
and any duplication of the same events give the same record by construction. Repairs close
sessions whose `occupant.left` was lost; they are returned so the caller can audit them.
The sessions themselves are built in service.domain.sessions, their time arithmetic is
service.domain.intervals'. docs/events.md explains every rule for operators and frontend
developers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from service.domain.cutoffs import completion, late_clinic_deadline
from service.domain.intervals import INF, Interval, intersect, seconds, union
from service.domain.model import CallStatus, EndReason, Missing, Role, missing_party
from service.domain.prosody import EventType, ProsodyStarted, RoomEvent, Snapshot
from service.domain.sessions import (
    BuiltSession,
    RoomInputs,
    build_sessions,
    room_inputs,
    session_hosts,
)

PARTIES = (Role.DOCTOR, Role.PATIENT)


@dataclass(frozen=True)
class Params:
    """Everything besides the inputs and the time that the derivation reads. An incremental
    summary (service.domain.incremental) is used only with the same values: a rescheduled
    appointment or a changed setting derives in full."""

    room_name: str
    doctor_uid: str
    patient_uid: str
    appointment_end_ms: int | None
    call_end_grace_ms: int
    no_show_grace_ms: int
    max_call_ms: int

    @property
    def no_show_at(self) -> int | None:
        """The appointment's no-show deadline before late clinics move it (None: no end)."""
        if self.appointment_end_ms is None:
            return None
        return self.appointment_end_ms + self.no_show_grace_ms


@dataclass(frozen=True)
class PresenceSession:
    """One occupant session as derived. `left_at` None: still present (as far as we know).

    `joined_at` is None for a session known only from its `occupant.left` (its join was lost
    and no snapshot listed it); such a session is kept but not counted. `counted` is False
    for those and for sessions that began after the record's cutoff. `left_at_latest`, for a
    repaired session only: the earliest later moment it is known to have been gone (None:
    not known, or not repaired).
    """

    session: str
    user_id: str | None
    role: Role
    joined_at: int | None
    left_at: int | None
    end_reason: EndReason | None
    boot_id: str | None
    host: str | None
    meeting_id: str | None
    repaired: bool
    counted: bool
    left_at_latest: int | None = None


@dataclass(frozen=True)
class Repair:
    """A session closed by the service because its real `occupant.left` is unknown."""

    session: str
    reason: EndReason
    at: int
    latest: int | None = None


@dataclass(frozen=True)
class Waiting:
    """A party present (in the room) while the other is not, before the call started;
    `since` is the waiting party's first presence."""

    role: Role
    since: int


@dataclass(frozen=True)
class LobbyVisit:
    """One knock in the room's lobby: `reason` admitted, denied, left, unknown, or a repair
    (a lost lobby.left); `left_at` None while still knocking."""

    session: str
    role: Role
    joined_at: int
    left_at: int | None
    reason: EndReason | None
    repaired: bool


@dataclass(frozen=True)
class RecordingSpan:
    """A recorder occupant's stay: `ended_at` None while recording (as far as we know)."""

    session: str
    started_at: int
    ended_at: int | None
    mode: str | None


@dataclass(frozen=True)
class CallDerivation:
    """The server's view of one call. Times are int ms, durations whole seconds.

    `cutoff` is when the record stopped changing: the completion moment for COMPLETED, the
    no-show deadline for NO_SHOW, else None. Sessions that begin at or after it are listed but
    not counted, so the record stays the same however late `now_ms` is.
    `duration_uncertain`: a repaired session's unknown end bounds the counted overlap, so the
    true duration may differ (each such session lies between its last moment known present
    and its `left_at_latest`). `waiting`: who is waiting for the other, while the call has not
    started. `doctor_wait_s` / `patient_wait_s`: from that party's first presence to the start
    (or, for NO_SHOW, to its last departure); None while neither started nor ended.
    """

    status: CallStatus
    doctor_joined_at: int | None
    patient_joined_at: int | None
    started_at: int | None
    ended_at: int | None
    duration: int | None
    doctor_presence_s: int
    patient_presence_s: int
    missing: Missing | None
    completed_at: int | None
    cutoff: int | None
    sessions: tuple[PresenceSession, ...] = field(default=())
    repairs: tuple[Repair, ...] = field(default=())
    duration_uncertain: bool = False
    waiting: Waiting | None = None
    doctor_wait_s: int | None = None
    patient_wait_s: int | None = None
    lobby: tuple[LobbyVisit, ...] = ()
    recordings: tuple[RecordingSpan, ...] = ()
    # Counted sessions with no end yet (kept apart from `sessions` for incremental steps).
    open_sessions: int = 0
    # The hosts whose snapshots and restarts can change this record without listing its room
    # (see `sessions.session_hosts`), sorted.
    hosts: tuple[str, ...] = ()


# --- the derivation ----------------------------------------------------------------------------


def derive_call(
    events: Iterable[RoomEvent],
    snapshots: Iterable[Snapshot],
    restarts: Iterable[ProsodyStarted],
    params: Params,
    *,
    now_ms: int,
) -> CallDerivation:
    """The call record from every event of its room (rules in docs/events.md).

    `events` are this room's room/occupant events (others are ignored); `snapshots` those of
    the call's time window (a room absent from one had no occupants then); `restarts` the
    prosody.started events. The result depends only on the set of events (by id), `params`
    and `now_ms`, never on their order or duplicates.

    Status: IN_PROGRESS once doctor and patient were present together (before the no-show
    deadline); COMPLETED once, after that, the room was destroyed with nobody of another
    meeting present, or nobody was present for `call_end_grace_ms`; NO_SHOW when they never
    overlapped and `now_ms` reached `appointment_end_ms + no_show_grace_ms`; else SCHEDULED.
    """
    inputs = room_inputs(events, snapshots, restarts, params.room_name)
    built = _build(inputs, params, now_ms, lobby=False)
    # Knocks in the lobby: presence for waiting, never for the call itself.
    knocks = _build(inputs, params, now_ms, lobby=True)
    known = [b for b in built if b.joined_at is not None]
    knocked = [b for b in knocks if b.joined_at is not None]
    deadline = _no_show_deadline(known, knocked, params)
    first = _first_overlap(known, deadline, now_ms)
    status, cutoff = _status(known, inputs.destroys, first, deadline, params, now_ms)
    doctor = union(_spans(known, Role.DOCTOR, cutoff, now_ms))
    patient = union(_spans(known, Role.PATIENT, cutoff, now_ms))
    together = intersect(doctor, patient)
    completed = status is CallStatus.COMPLETED
    # A knock in the lobby counts as having come.
    firsts = {role: _first_join([*known, *knocked], role, cutoff) for role in PARTIES}
    waits = _waits(known, knocked, firsts, first, status, cutoff, now_ms)
    sessions = tuple(_presence_session(b, cutoff) for b in sorted(built, key=_session_order))
    return CallDerivation(
        status=status,
        doctor_joined_at=_first_join(known, Role.DOCTOR, cutoff),
        patient_joined_at=_first_join(known, Role.PATIENT, cutoff),
        started_at=None if first is None else int(first),
        ended_at=int(together[-1][1]) if completed and together else None,
        duration=seconds(together) if completed else None,
        doctor_presence_s=seconds(doctor),
        patient_presence_s=seconds(patient),
        missing=_missing(status, firsts),
        completed_at=int(cutoff) if completed and cutoff is not None else None,
        cutoff=None if cutoff is None else int(cutoff),
        sessions=sessions,
        repairs=_repairs(built),
        duration_uncertain=_uncertain(known, cutoff, now_ms),
        waiting=_waiting(known, knocked, firsts) if status is CallStatus.SCHEDULED else None,
        doctor_wait_s=waits[Role.DOCTOR],
        patient_wait_s=waits[Role.PATIENT],
        lobby=_lobby(knocked, cutoff),
        recordings=_recordings(inputs.events, inputs.destroys, cutoff),
        open_sessions=sum(1 for s in sessions if s.left_at is None and s.counted),
        hosts=session_hosts([*built, *knocks]),
    )


def _build(inputs: RoomInputs, params: Params, now_ms: int, lobby: bool) -> list[BuiltSession]:
    return build_sessions(
        inputs,
        lobby=lobby,
        doctor_uid=params.doctor_uid,
        patient_uid=params.patient_uid,
        now_ms=now_ms,
        max_call_ms=params.max_call_ms,
    )


def _counts(item: BuiltSession, cutoff: float | None) -> bool:
    """Whether a session is counted: it joined, before the cutoff."""
    return item.joined_at is not None and (cutoff is None or item.joined_at < cutoff)


def _spans(
    items: Sequence[BuiltSession], role: Role, cutoff: float | None, now_ms: int, bound: str = ""
) -> list[Interval]:
    """One role's counted intervals; open ones run to now, everything stops at cutoff.

    `bound` "earliest" / "latest" puts repaired ends at their bounds instead (an unknown
    latest runs to the cutoff, or now)."""
    out: list[Interval] = []
    for item in items:
        joined = item.joined_at
        assert joined is not None
        if item.role is not role or (cutoff is not None and joined >= cutoff):
            continue
        left: float | None = item.left_at
        if bound and item.repaired:
            left = item.left_earliest if bound == "earliest" else item.left_latest
            if left is None:
                left = INF
        end: float = max(now_ms, joined) if left is None or left == INF else left
        out.append((joined, end if cutoff is None else min(end, cutoff)))
    return out


def _overlap(
    items: Sequence[BuiltSession], cutoff: float | None, now_ms: int, bound: str = ""
) -> list[Interval]:
    """When doctor and patient were present together (with `bound`, see `_spans`)."""
    return intersect(
        union(_spans(items, Role.DOCTOR, cutoff, now_ms, bound)),
        union(_spans(items, Role.PATIENT, cutoff, now_ms, bound)),
    )


def _no_show_deadline(
    known: Sequence[BuiltSession], knocked: Sequence[BuiltSession], params: Params
) -> float | None:
    """The no-show deadline (None without an appointment end), moved by late clinics."""
    if params.appointment_end_ms is None:
        return None
    return late_clinic_deadline(
        params.appointment_end_ms + params.no_show_grace_ms,
        [
            (float(b.joined_at or 0), INF if b.left_at is None else b.left_at)
            for b in (*known, *knocked)
            if b.role in PARTIES
        ],
        params.call_end_grace_ms,
        params.max_call_ms,
    )


def _first_overlap(
    known: Sequence[BuiltSession], deadline: float | None, now_ms: int
) -> float | None:
    """When doctor and patient first overlapped, in time to count (the call's start)."""
    overlap = _overlap(known, None, now_ms)
    first = overlap[0][0] if overlap else None
    if first is not None and deadline is not None and first >= deadline:
        # They met only after the no-show deadline, when the call had already become NO_SHOW.
        return None
    return first


def _status(
    known: Sequence[BuiltSession],
    destroys: Sequence[RoomEvent],
    first: float | None,
    deadline: float | None,
    params: Params,
    now_ms: int,
) -> tuple[CallStatus, float | None]:
    """The status, and the cutoff after which nothing changes the record."""
    if first is not None:
        cutoff = completion(known, destroys, first, now_ms, params.call_end_grace_ms)
        return (CallStatus.IN_PROGRESS if cutoff is None else CallStatus.COMPLETED), cutoff
    if deadline is not None and now_ms >= deadline:
        return CallStatus.NO_SHOW, deadline
    return CallStatus.SCHEDULED, None


def _uncertain(known: Sequence[BuiltSession], cutoff: float | None, now_ms: int) -> bool:
    """Would the overlap differ with every repaired end at its earliest, or at its latest?"""
    earliest = _overlap(known, cutoff, now_ms, "earliest")
    return earliest != _overlap(known, cutoff, now_ms, "latest")


def _first_join(items: Iterable[BuiltSession], role: Role, cutoff: float | None) -> int | None:
    """The role's first counted join among `items`."""
    joins = [b.joined_at for b in items if b.role is role and b.joined_at is not None]
    return min((j for j in joins if cutoff is None or j < cutoff), default=None)


def _missing(status: CallStatus, firsts: Mapping[Role, int | None]) -> Missing | None:
    if status is not CallStatus.NO_SHOW:
        return None
    return missing_party(
        doctor_came=firsts[Role.DOCTOR] is not None,
        patient_came=firsts[Role.PATIENT] is not None,
    )


def _last_left(
    known: Sequence[BuiltSession],
    knocked: Sequence[BuiltSession],
    role: Role,
    cutoff: float | None,
    now_ms: int,
) -> float | None:
    """The role's last departure from the room or the lobby (an open one: now)."""
    spans = _spans(known, role, cutoff, now_ms) + _spans(knocked, role, cutoff, now_ms)
    return max((end for _, end in spans), default=None)


def _waits(
    known: Sequence[BuiltSession],
    knocked: Sequence[BuiltSession],
    firsts: Mapping[Role, int | None],
    first: float | None,
    status: CallStatus,
    cutoff: float | None,
    now_ms: int,
) -> dict[Role, int | None]:
    """Each party's wait: from its first presence to the start, or for NO_SHOW to its last
    departure; None while neither started nor ended."""
    if first is not None:
        return {role: _wait_seconds(firsts[role], first) for role in PARTIES}
    if status is CallStatus.NO_SHOW:
        return {
            role: _wait_seconds(firsts[role], _last_left(known, knocked, role, cutoff, now_ms))
            for role in PARTIES
        }
    return {role: None for role in PARTIES}


def _presence_session(b: BuiltSession, cutoff: float | None) -> PresenceSession:
    return PresenceSession(
        session=b.draft.session,
        user_id=b.draft.user_id,
        role=b.role,
        joined_at=b.joined_at,
        left_at=b.left_at,
        end_reason=b.end_reason,
        boot_id=b.draft.boot_id,
        host=b.draft.host,
        meeting_id=b.draft.meeting_id,
        repaired=b.repaired,
        counted=_counts(b, cutoff),
        left_at_latest=b.left_latest if b.repaired else None,
    )


def _repairs(built: Sequence[BuiltSession]) -> tuple[Repair, ...]:
    repairs = [
        Repair(b.draft.session, b.end_reason, b.left_at, b.left_latest)
        for b in built
        if b.repaired and b.end_reason is not None and b.left_at is not None
    ]
    return tuple(sorted(repairs, key=lambda r: (r.at, r.session)))


def _lobby(knocked: Sequence[BuiltSession], cutoff: float | None) -> tuple[LobbyVisit, ...]:
    return tuple(
        LobbyVisit(b.draft.session, b.role, b.joined_at, b.left_at, b.end_reason, b.repaired)
        for b in sorted(knocked, key=_session_order)
        if b.joined_at is not None and (cutoff is None or b.joined_at < cutoff)
    )


def _wait_seconds(first_presence: int | None, until: float | None) -> int | None:
    if first_presence is None or until is None:
        return None
    return seconds([(first_presence, max(first_presence, until))])


def _recordings(
    room_events: Sequence[RoomEvent], destroys: Sequence[RoomEvent], cutoff: float | None
) -> tuple[RecordingSpan, ...]:
    """Each recorder session from its recording.started to its recording.stopped; a lost stop
    is closed by the destruction of its meeting. Recordings begun at or after the cutoff
    belong to a later life of the room."""
    starts: dict[str, RoomEvent] = {}
    stops: dict[str, RoomEvent] = {}
    for event in room_events:  # sorted: the first of each kind is the earliest
        if event.recording is None:
            continue
        chosen = starts if event.type is EventType.RECORDING_STARTED else stops
        chosen.setdefault(event.recording.session, event)
    spans = []
    for session, start in starts.items():
        if cutoff is not None and start.occurred_at >= cutoff:
            continue
        stop = stops.get(session)
        ended = None
        if stop is not None:
            ended = max(stop.occurred_at, start.occurred_at)
        else:
            ended = next(
                (
                    d.occurred_at
                    for d in destroys
                    if d.meeting_id == start.meeting_id and d.occurred_at >= start.occurred_at
                ),
                None,
            )
        mode = start.recording.mode if start.recording else None
        if mode is None and stop is not None and stop.recording is not None:
            mode = stop.recording.mode
        spans.append(RecordingSpan(session, start.occurred_at, ended, mode))
    return tuple(sorted(spans, key=lambda r: (r.started_at, r.session)))


def _waiting(
    known: Sequence[BuiltSession],
    knocked: Sequence[BuiltSession],
    firsts: Mapping[Role, int | None],
) -> Waiting | None:
    """Who waits now: a party knocking in the lobby (waiting for admission, even while the
    other is in the room), else a party in the room while the other is not.

    Among equals the first to come waits."""
    in_room = {b.role for b in known if b.left_at is None}
    knocking = {b.role for b in knocked if b.left_at is None} - in_room
    parties = ((Role.PATIENT, Role.DOCTOR), (Role.DOCTOR, Role.PATIENT))
    candidates = [role for role, _ in parties if role in knocking] or [
        role for role, other in parties if role in in_room and other not in in_room
    ]
    found = [Waiting(role, since) for role in candidates if (since := firsts[role]) is not None]
    return min(found, key=lambda w: w.since) if found else None


def _session_order(item: BuiltSession) -> tuple[int, str]:
    """Timeline order: by join (or, for a session known only from its left, by that)."""
    at = item.joined_at if item.joined_at is not None else item.left_at
    return (at if at is not None else 0, item.draft.session)
