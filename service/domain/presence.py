"""Presence: the call record derived from Prosody's events, as a pure function of their set.

`derive_call` deduplicates by event id and reasons only about event times, so any permutation
and any duplication of the same events give the same record by construction. Repairs close
sessions whose `occupant.left` was lost; they are returned so the caller can audit them.
docs/events.md explains every rule for operators and frontend developers.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from service.domain.model import CallStatus, EndReason, Missing, Role, missing_party, role_in
from service.domain.prosody import EventType, ProsodyStarted, RoomEvent, Snapshot
from service.domain.rules import whole_seconds

Interval = tuple[float, float]
INF = math.inf
# A host whose snapshots carry their interval is silent after this many intervals unheard.
SILENT_INTERVALS = 3


def silent_from(last_heard_ms: int, interval_ms: int) -> int:
    """When a host last heard from at `last_heard_ms`, snapshotting every `interval_ms`,
    becomes silent (the one home of that rule: derivation, sweeper and admin API use it)."""
    return last_heard_ms + SILENT_INTERVALS * interval_ms


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
    # (see `watched_hosts`), sorted.
    hosts: tuple[str, ...] = ()


# --- building sessions -------------------------------------------------------------------------

T = TypeVar("T", RoomEvent, Snapshot, ProsodyStarted)


def _order(item: RoomEvent | Snapshot | ProsodyStarted) -> tuple[int, int, str]:
    seq = -1 if item.seq is None else item.seq
    return (item.occurred_at, seq, item.id)


def _unique(items: Iterable[T]) -> list[T]:
    """One item per id, chosen independently of input order, sorted by (occurred_at, seq)."""
    chosen: dict[str, T] = {}
    for item in items:
        kept = chosen.get(item.id)
        # Two different bodies under one id should not happen; if it does, the choice must
        # still not depend on arrival order, so take the smaller by a total order.
        if kept is None or (_order(item), repr(item)) < (_order(kept), repr(kept)):
            chosen[item.id] = item
    return sorted(chosen.values(), key=_order)


@dataclass
class _Draft:
    session: str
    join: RoomEvent | None = None
    left: RoomEvent | None = None
    # (snapshot, listed joined_at, listed user_id, room meeting id), in time order.
    listings: list[tuple[Snapshot, int, str | None, str | None]] = field(default_factory=list)

    @property
    def joined_at(self) -> int | None:
        if self.join is not None:
            return self.join.occurred_at
        if self.listings:
            return self.listings[0][1]
        return None

    @property
    def user_id(self) -> str | None:
        if self.join is not None:
            return self.join.occupant.user_id if self.join.occupant else None
        if self.listings:
            return self.listings[0][2]
        return self.left.occupant.user_id if self.left and self.left.occupant else None

    @property
    def host(self) -> str | None:
        for source in (self.join, self.listings[0][0] if self.listings else None, self.left):
            if source is not None:
                return source.host
        return None

    @property
    def boot_id(self) -> str | None:
        for source in (self.join, self.listings[0][0] if self.listings else None, self.left):
            if source is not None:
                return source.boot_id
        return None

    @property
    def meeting_id(self) -> str | None:
        if self.join is not None:
            return self.join.meeting_id
        if self.listings:
            return self.listings[0][3]
        return self.left.meeting_id if self.left is not None else None


def _drafts(
    events: Sequence[RoomEvent], snapshots: Sequence[Snapshot], room: str, lobby: bool = False
) -> list[_Draft]:
    """The room's occupant sessions, or with `lobby` its lobby's (knocks): the same rules,
    from lobby.joined / lobby.left and the snapshots' `lobby` listings."""
    joined, left = (
        (EventType.LOBBY_JOINED, EventType.LOBBY_LEFT)
        if lobby
        else (EventType.OCCUPANT_JOINED, EventType.OCCUPANT_LEFT)
    )
    drafts: dict[str, _Draft] = {}
    for event in events:
        if event.occupant is None or event.type not in (joined, left):
            continue
        draft = drafts.setdefault(event.occupant.session, _Draft(event.occupant.session))
        # Events are sorted, so the first join/left seen is the earliest one.
        if event.type is joined and draft.join is None:
            draft.join = event
        elif event.type is left and draft.left is None:
            draft.left = event
    for snap in snapshots:
        for listed_room in snap.rooms:
            if listed_room.room_name != room:
                continue
            for occupant in listed_room.lobby if lobby else listed_room.occupants:
                draft = drafts.setdefault(occupant.session, _Draft(occupant.session))
                draft.listings.append(
                    (snap, occupant.joined_at, occupant.user_id, listed_room.meeting_id)
                )
    return sorted(drafts.values(), key=lambda d: d.session)


ROOM_LEFT_REASONS = frozenset({EndReason.LEFT, EndReason.KICKED, EndReason.ROOM_DESTROYED})
LOBBY_LEFT_REASONS = frozenset({EndReason.LEFT, EndReason.ADMITTED, EndReason.DENIED})


def _left_reason(
    reason: str | None, allowed: frozenset[EndReason] = ROOM_LEFT_REASONS
) -> EndReason:
    try:
        parsed = EndReason(reason or "unknown")
    except ValueError:
        return EndReason.UNKNOWN
    # A sender may only report how an occupant left; repairs are the service's own words.
    return parsed if parsed in allowed else EndReason.UNKNOWN


def _destroy_closes(destroy: RoomEvent, meeting_id: str | None, joined_at: int) -> bool:
    if destroy.meeting_id != meeting_id:
        return False
    if meeting_id is None:
        # Without meeting ids (event_sync) a join in the destroy's own second may already be
        # the next life of the room, so only strictly earlier sessions are closed.
        return joined_at < destroy.occurred_at
    return joined_at <= destroy.occurred_at


@dataclass(frozen=True)
class _Closure:
    """How a session without a known `occupant.left` ends: at `at`, somewhere between
    `earliest` (1 ms after the last moment known present) and `latest` (None: unknown)."""

    at: int
    reason: EndReason
    earliest: int
    latest: int | None


@dataclass(frozen=True)
class _HostLog:
    """When one Prosody host was heard from (any boot), and one boot's snapshot interval."""

    heard: tuple[int, ...]
    # (snapshot time, interval ms) of its snapshots that carry an interval, in time order.
    intervals: tuple[tuple[int, int], ...]

    def interval_at(self, at: int) -> int:
        """The interval announced by the last snapshot at or before `at` (else the first)."""
        index = bisect.bisect_right(self.intervals, (at, INF)) - 1
        return self.intervals[max(index, 0)][1]

    def silent_at(self, start: int, end: int) -> int | None:
        """The first moment in (start, end] at which the host had been unheard for
        SILENT_INTERVALS of its intervals, counting `start` as heard; None if never."""
        previous = start
        first = bisect.bisect_right(self.heard, start)
        for heard in (*self.heard[first:], end):
            heard = min(heard, end)
            limit = silent_from(previous, self.interval_at(previous))
            if heard >= limit:
                return limit
            previous = max(previous, heard)
            if heard >= end:
                break
        return None


def _host_logs(
    room_events: Sequence[RoomEvent],
    snapshots: Sequence[Snapshot],
    restarts: Sequence[ProsodyStarted],
) -> dict[tuple[str, str | None], _HostLog]:
    """Keyed by (host, boot): only a boot that announced its snapshot interval can be silent
    (event_sync never does; a module with snapshots off neither)."""
    heard: dict[str, set[int]] = {}
    intervals: dict[tuple[str, str | None], list[tuple[int, int]]] = {}
    items: list[RoomEvent | Snapshot | ProsodyStarted] = [*room_events, *snapshots, *restarts]
    for item in items:
        heard.setdefault(item.host, set()).add(item.occurred_at)
    for snap in snapshots:
        if snap.interval_s is not None:
            key = (snap.host, snap.boot_id)
            intervals.setdefault(key, []).append((snap.occurred_at, snap.interval_s * 1000))
    return {
        key: _HostLog(tuple(sorted(heard[key[0]])), tuple(sorted(set(announced))))
        for key, announced in intervals.items()
    }


def _repair(
    draft: _Draft,
    room_events: Sequence[RoomEvent],
    destroys: Sequence[RoomEvent],
    snapshots: Sequence[Snapshot],
    restarts: Sequence[ProsodyStarted],
    hosts: Mapping[tuple[str, str | None], _HostLog],
    now_ms: int,
    max_call_ms: int,
) -> _Closure | None:
    """How to close a session with no known `occupant.left`, or None if it is still open.

    The first sign that it is gone decides: the room's destruction, a restart of its Prosody
    (another boot), or the first snapshot of its host that omits it. A destruction or an
    omitting snapshot closes it at its own time (late by less than a snapshot interval); a
    restart closes it at the last moment it was known present (see `_last_seen`), since
    nothing says how long Prosody was down. If its host fell silent (SILENT_INTERVALS
    unheard) before that sign, or without any sign by `now_ms`, it is `host_silent`, closed
    at the last moment known present too. Failing all of those, the sweeper closes it there
    once that is more than `max_call_ms` ago.

    "At the last moment known present" is 1 ms after it: present *at* a moment means present
    through that millisecond, and keeping an instant at which both parties were known present
    as an overlap means a repair can complete an IN_PROGRESS call but never turn it back into
    one that never started.
    """
    joined = draft.joined_at
    assert joined is not None
    listed = {snap.id for snap, *_ in draft.listings}
    # (time, rank, reason): at equal times the most specific reason wins.
    signs: list[tuple[int, int, EndReason]] = []
    for destroy in destroys:
        if _destroy_closes(destroy, draft.meeting_id, joined):
            signs.append((destroy.occurred_at, 0, EndReason.ROOM_DESTROYED))
    for restart in restarts:
        if (
            restart.host == draft.host
            and restart.boot_id != draft.boot_id
            and restart.occurred_at > joined
        ):
            signs.append((restart.occurred_at, 1, EndReason.PROSODY_RESTART))
    for snap in snapshots:
        # Snapshots are sorted, so the first one that omits the session is the earliest.
        if snap.host == draft.host and snap.occurred_at > joined and snap.id not in listed:
            signs.append((snap.occurred_at, 2, EndReason.SNAPSHOT_REPAIR))
            break
    last_seen = _last_seen(draft, joined, room_events)
    host = hosts.get((draft.host, draft.boot_id)) if draft.host is not None else None
    if signs:
        at, _, reason = min(signs)
        earliest = min(last_seen + 1, at)
        if host is not None and host.silent_at(last_seen, at) is not None:
            return _Closure(earliest, EndReason.HOST_SILENT, earliest, at)
        if reason is EndReason.PROSODY_RESTART:
            return _Closure(earliest, reason, earliest, at)
        return _Closure(at, reason, earliest, at)
    if host is not None and host.silent_at(last_seen, now_ms) is not None:
        return _Closure(last_seen + 1, EndReason.HOST_SILENT, last_seen + 1, None)
    if now_ms > last_seen + max_call_ms:
        return _Closure(last_seen + 1, EndReason.SWEEPER, last_seen + 1, None)
    return None


def _last_seen(draft: _Draft, joined: int, room_events: Sequence[RoomEvent]) -> int:
    """The last moment a session with no end is known present.

    Its join, the snapshots that list it, and any later event of the same meeting and boot:
    events are created in order, so whatever Prosody reported after the join and before a
    left we never received, it reported while the occupant was still there.
    """
    times = [joined, *(snap.occurred_at for snap, *_ in draft.listings)]
    times += [
        event.occurred_at
        for event in room_events
        if event.meeting_id == draft.meeting_id
        and event.boot_id == draft.boot_id
        and event.occurred_at > joined
    ]
    return max(times)


@dataclass(frozen=True)
class _Built:
    """A draft with its end decided."""

    draft: _Draft
    role: Role
    left_at: int | None
    end_reason: EndReason | None
    repaired: bool
    # The bounds of a repaired end (see _Closure); equal to left_at otherwise.
    left_earliest: int | None = None
    left_latest: int | None = None

    @property
    def joined_at(self) -> int | None:
        return self.draft.joined_at


def _build(
    drafts: Sequence[_Draft],
    room_events: Sequence[RoomEvent],
    destroys: Sequence[RoomEvent],
    snapshots: Sequence[Snapshot],
    restarts: Sequence[ProsodyStarted],
    hosts: Mapping[tuple[str, str | None], _HostLog],
    *,
    doctor_uid: str,
    patient_uid: str,
    now_ms: int,
    max_call_ms: int,
) -> list[_Built]:
    built = []
    for draft in drafts:
        role = role_in(doctor_uid, patient_uid, draft.user_id)
        joined = draft.joined_at
        if draft.left is not None:
            # A real left always wins over any repair (a late left of an old session included).
            left_at = draft.left.occurred_at
            if joined is not None:
                left_at = max(joined, left_at)
            reason = _left_reason(
                draft.left.reason,
                LOBBY_LEFT_REASONS
                if draft.left.type is EventType.LOBBY_LEFT
                else ROOM_LEFT_REASONS,
            )
            built.append(_Built(draft, role, left_at, reason, False, left_at, left_at))
            continue
        closure = None
        if joined is not None:
            closure = _repair(
                draft, room_events, destroys, snapshots, restarts, hosts, now_ms, max_call_ms
            )
        if closure is None:
            built.append(_Built(draft, role, None, None, False))
        else:
            built.append(
                _Built(
                    draft,
                    role,
                    closure.at,
                    closure.reason,
                    True,
                    closure.earliest,
                    closure.latest,
                )
            )
    return built


# --- interval arithmetic -----------------------------------------------------------------------


def _union(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _intersect(first: Sequence[Interval], second: Sequence[Interval]) -> list[Interval]:
    result: list[Interval] = []
    i = j = 0
    while i < len(first) and j < len(second):
        start = max(first[i][0], second[j][0])
        end = min(first[i][1], second[j][1])
        if end > start:
            result.append((start, end))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return result


def _seconds(intervals: Iterable[Interval]) -> int:
    return whole_seconds(sum(end - start for start, end in intervals))


# --- the derivation ----------------------------------------------------------------------------


def _grace_cutoff(
    everyone: Sequence[Interval], started_at: float, now_ms: int, grace_ms: int
) -> float | None:
    """Last-left + grace of the first gap of `grace_ms` with nobody present after `started_at`.

    `everyone` is the union of all counted sessions with open ones running to infinity. A
    block starting within the grace of the previous one continues the same call.
    """
    blocks = [block for block in everyone if block[1] > started_at]
    if not blocks:
        return None
    end = blocks[0][1]
    for start, block_end in blocks[1:]:
        if start - end >= grace_ms:
            break
        end = block_end
    if end == INF or now_ms < end + grace_ms:
        return None
    return end + grace_ms


def _destroy_cutoff(
    destroys: Sequence[RoomEvent],
    spans: Sequence[tuple[str | None, float, float]],
    started_at: float,
) -> float | None:
    """The first room.destroyed after the overlap began with nobody of another meeting present.

    Sessions of the destroyed meeting do not count as present even if their real
    `occupant.left` is a little later: Prosody can report the destroy before the last left.
    """
    for destroy in destroys:
        at = destroy.occurred_at
        if at <= started_at:
            continue
        if not any(
            meeting != destroy.meeting_id and start < at < end for meeting, start, end in spans
        ):
            return at
    return None


def late_clinic_deadline(
    deadline: int, parties: Iterable[Interval], grace_ms: int, max_call_ms: int
) -> float:
    """The no-show deadline, moved while a party is present or waiting (late clinics).

    `parties` are the doctor's and the patient's presence intervals (open ones end at INF).
    If one of them is present at `deadline`, it moves to the last departure of that stretch of
    presence plus `grace_ms` (a return within the grace continues the wait, as a rejoin
    continues a call), and never beyond `deadline + max_call_ms`.
    """
    stretch: Interval | None = None
    for start, end in _union(parties):
        if stretch is not None and start - stretch[1] < grace_ms:
            stretch = (stretch[0], max(stretch[1], end))
        else:
            if stretch is not None and stretch[0] <= deadline < stretch[1]:
                break
            stretch = (start, end)
    if stretch is None or not stretch[0] <= deadline < stretch[1]:
        return deadline
    return min(stretch[1] + grace_ms, deadline + max_call_ms)


def _wait_seconds(first_presence: int | None, until: float | None) -> int | None:
    if first_presence is None or until is None:
        return None
    return _seconds([(first_presence, max(first_presence, until))])


def derive_call(
    events: Iterable[RoomEvent],
    snapshots: Iterable[Snapshot],
    restarts: Iterable[ProsodyStarted],
    *,
    room_name: str,
    doctor_uid: str,
    patient_uid: str,
    now_ms: int,
    appointment_end_ms: int | None,
    call_end_grace_ms: int,
    no_show_grace_ms: int,
    max_call_ms: int,
) -> CallDerivation:
    """The call record from every event of its room (rules in docs/events.md).

    `events` are this room's room/occupant events (others are ignored); `snapshots` those of
    the call's time window (a room absent from one had no occupants then); `restarts` the
    prosody.started events. The result depends only on the set of events (by id) and the
    arguments, never on their order or duplicates.

    Status: IN_PROGRESS once doctor and patient were present together (before the no-show
    deadline); COMPLETED once, after that, the room was destroyed with nobody of another
    meeting present, or nobody was present for `call_end_grace_ms`; NO_SHOW when they never
    overlapped and `now_ms` reached `appointment_end_ms + no_show_grace_ms`; else SCHEDULED.
    """
    room = room_name.lower()
    room_events = [e for e in _unique(events) if e.room_name == room]
    snaps = _unique(snapshots)
    destroys = [e for e in room_events if e.type is EventType.ROOM_DESTROYED]
    boots = _unique(restarts)
    hosts = _host_logs(room_events, snaps, boots)
    built = _build(
        _drafts(room_events, snaps, room),
        room_events,
        destroys,
        snaps,
        boots,
        hosts,
        doctor_uid=doctor_uid,
        patient_uid=patient_uid,
        now_ms=now_ms,
        max_call_ms=max_call_ms,
    )
    known = [b for b in built if b.joined_at is not None]
    # Knocks in the lobby: presence for waiting, never for the call itself. The lobby room's
    # own destruction is not reported (the module on the lobby component sends only lobby
    # events and snapshots), so no destroy closes a knock.
    knocks = _build(
        _drafts(room_events, snaps, room, lobby=True),
        room_events,
        (),
        snaps,
        boots,
        hosts,
        doctor_uid=doctor_uid,
        patient_uid=patient_uid,
        now_ms=now_ms,
        max_call_ms=max_call_ms,
    )
    knocked = [b for b in knocks if b.joined_at is not None]

    def spans(
        role: Role, cutoff: float | None, bound: str = "", items: Sequence[_Built] = known
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

    # Did doctor and patient ever overlap, in time to count?
    overlap = _intersect(_union(spans(Role.DOCTOR, None)), _union(spans(Role.PATIENT, None)))
    # For "is anyone still here", an open session has no end yet.
    open_spans = [
        (b.draft.meeting_id, float(b.joined_at or 0), INF if b.left_at is None else b.left_at)
        for b in known
    ]
    deadline: float | None = None
    if appointment_end_ms is not None:
        deadline = late_clinic_deadline(
            appointment_end_ms + no_show_grace_ms,
            [
                (float(b.joined_at or 0), INF if b.left_at is None else b.left_at)
                for b in (*known, *knocked)
                if b.role in (Role.DOCTOR, Role.PATIENT)
            ],
            call_end_grace_ms,
            max_call_ms,
        )
    first = overlap[0][0] if overlap else None
    if first is not None and deadline is not None and first >= deadline:
        # They met only after the no-show deadline, when the call had already become NO_SHOW.
        first = None

    # Status, and the cutoff after which nothing changes the record.
    cutoff: float | None = None
    status = CallStatus.SCHEDULED
    if first is not None:
        status = CallStatus.IN_PROGRESS
        found = [
            c
            for c in (
                _destroy_cutoff(destroys, open_spans, first),
                _grace_cutoff(
                    _union((s, e) for _, s, e in open_spans), first, now_ms, call_end_grace_ms
                ),
            )
            if c is not None
        ]
        if found:
            cutoff = min(found)
            status = CallStatus.COMPLETED
    elif deadline is not None and now_ms >= deadline:
        status = CallStatus.NO_SHOW
        cutoff = deadline

    doctor = _union(spans(Role.DOCTOR, cutoff))
    patient = _union(spans(Role.PATIENT, cutoff))
    together = _intersect(doctor, patient)
    completed = status is CallStatus.COMPLETED
    # Would the overlap differ with every repaired end at its earliest, or at its latest?
    uncertain = _intersect(
        _union(spans(Role.DOCTOR, cutoff, "earliest")),
        _union(spans(Role.PATIENT, cutoff, "earliest")),
    ) != _intersect(
        _union(spans(Role.DOCTOR, cutoff, "latest")),
        _union(spans(Role.PATIENT, cutoff, "latest")),
    )

    def first_join(role: Role) -> int | None:
        joins = [
            b.joined_at
            for b in known
            if b.role is role
            and b.joined_at is not None
            and (cutoff is None or b.joined_at < cutoff)
        ]
        return min(joins) if joins else None

    def first_presence(role: Role) -> int | None:
        """The first join in the room or the lobby (a knock is presence)."""
        joins = [
            b.joined_at
            for b in (*known, *knocked)
            if b.role is role
            and b.joined_at is not None
            and (cutoff is None or b.joined_at < cutoff)
        ]
        return min(joins) if joins else None

    # A knock in the lobby counts as having come.
    firsts = {role: first_presence(role) for role in (Role.DOCTOR, Role.PATIENT)}
    doctor_joined_at = first_join(Role.DOCTOR)
    patient_joined_at = first_join(Role.PATIENT)
    missing = None
    if status is CallStatus.NO_SHOW:
        missing = missing_party(
            doctor_came=firsts[Role.DOCTOR] is not None,
            patient_came=firsts[Role.PATIENT] is not None,
        )

    def last_left(role: Role) -> float | None:
        ends = [end for _, end in spans(role, cutoff) + spans(role, cutoff, items=knocked)]
        return max(ends) if ends else None

    waits: dict[Role, int | None] = {Role.DOCTOR: None, Role.PATIENT: None}
    if first is not None:
        waits = {role: _wait_seconds(firsts[role], first) for role in waits}
    elif status is CallStatus.NO_SHOW:
        waits = {role: _wait_seconds(firsts[role], last_left(role)) for role in waits}
    waiting = None
    if status is CallStatus.SCHEDULED:
        waiting = _waiting(known, knocked, firsts)

    sessions = tuple(
        PresenceSession(
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
            counted=b.joined_at is not None and (cutoff is None or b.joined_at < cutoff),
            left_at_latest=b.left_latest if b.repaired else None,
        )
        for b in sorted(built, key=_session_order)
    )
    repairs = [
        Repair(b.draft.session, b.end_reason, b.left_at, b.left_latest)
        for b in built
        if b.repaired and b.end_reason is not None and b.left_at is not None
    ]
    return CallDerivation(
        status=status,
        doctor_joined_at=doctor_joined_at,
        patient_joined_at=patient_joined_at,
        started_at=None if first is None else int(first),
        ended_at=int(together[-1][1]) if completed and together else None,
        duration=_seconds(together) if completed else None,
        doctor_presence_s=_seconds(doctor),
        patient_presence_s=_seconds(patient),
        missing=missing,
        completed_at=int(cutoff) if completed and cutoff is not None else None,
        cutoff=None if cutoff is None else int(cutoff),
        sessions=sessions,
        repairs=tuple(sorted(repairs, key=lambda r: (r.at, r.session))),
        duration_uncertain=uncertain,
        waiting=waiting,
        doctor_wait_s=waits[Role.DOCTOR],
        patient_wait_s=waits[Role.PATIENT],
        lobby=tuple(
            LobbyVisit(b.draft.session, b.role, b.joined_at, b.left_at, b.end_reason, b.repaired)
            for b in sorted(knocked, key=_session_order)
            if b.joined_at is not None and (cutoff is None or b.joined_at < cutoff)
        ),
        recordings=_recordings(room_events, destroys, cutoff),
        open_sessions=sum(1 for s in sessions if s.left_at is None and s.counted),
        hosts=watched_hosts([*built, *knocks]),
    )


def watched_hosts(built: Iterable[_Built]) -> tuple[str, ...]:
    """The hosts its sessions and knocks came from.

    A snapshot or a restart that does not list the room changes a session only through its
    own host: it may close an open one (an omission, another boot) or move a repair (an
    earlier sign, a silence it breaks). No other part of the record reads such an input. So
    a call need not be derived again for another host's snapshot or restart
    (tests/unit/test_incremental.py checks that skipping them changes nothing). Its own
    hosts' are applied even while nobody is in the room, so that its summary counts them and
    the next join is still a step.
    """
    return tuple(sorted({b.draft.host for b in built if b.draft.host is not None}))


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
    known: Sequence[_Built], knocked: Sequence[_Built], firsts: Mapping[Role, int | None]
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


def _session_order(item: _Built) -> tuple[int, str]:
    """Timeline order: by join (or, for a session known only from its left, by that)."""
    at = item.joined_at if item.joined_at is not None else item.left_at
    return (at if at is not None else 0, item.draft.session)
