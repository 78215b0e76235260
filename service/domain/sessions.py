"""Occupant sessions from Prosody's events: drafts, per-host logs, and repairs of lost lefts.

A session's join, left and snapshot listings make a `Draft`; `build_sessions` decides how each
ends: its real `occupant.left` (or `lobby.left`), else a repair after a sign that it is gone
(the room's destruction, a restart of its Prosody, a snapshot omitting it), its host's silence
or the longest call. Everything here depends only on the set of inputs, never on their order
or duplicates (`unique`). docs/events.md explains the rules for operators.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from service.domain.intervals import INF
from service.domain.model import EndReason, Role, role_in
from service.domain.prosody import EventType, ProsodyStarted, RoomEvent, Snapshot

# A host whose snapshots carry their interval is silent after this many intervals unheard.
SILENT_INTERVALS = 3

ROOM_LEFT_REASONS = frozenset({EndReason.LEFT, EndReason.KICKED, EndReason.ROOM_DESTROYED})
LOBBY_LEFT_REASONS = frozenset({EndReason.LEFT, EndReason.ADMITTED, EndReason.DENIED})

T = TypeVar("T", RoomEvent, Snapshot, ProsodyStarted)
HostKey = tuple[str, str | None]  # (host, boot)


def silent_from(last_heard_ms: int, interval_ms: int) -> int:
    """When a host last heard from at `last_heard_ms`, snapshotting every `interval_ms`,
    becomes silent (the one home of that rule: derivation, sweeper and admin API use it)."""
    return last_heard_ms + SILENT_INTERVALS * interval_ms


def _order(item: RoomEvent | Snapshot | ProsodyStarted) -> tuple[int, int, str]:
    seq = -1 if item.seq is None else item.seq
    return (item.occurred_at, seq, item.id)


def unique(items: Iterable[T]) -> list[T]:
    """One item per id, chosen independently of input order, sorted by (occurred_at, seq)."""
    chosen: dict[str, T] = {}
    for item in items:
        kept = chosen.get(item.id)
        # Two different bodies under one id should not happen; if it does, the choice must
        # still not depend on arrival order, so take the smaller by a total order.
        if kept is None or (_order(item), repr(item)) < (_order(kept), repr(kept)):
            chosen[item.id] = item
    return sorted(chosen.values(), key=_order)


# --- drafts ------------------------------------------------------------------------------------


@dataclass
class Draft:
    """What the inputs say of one session: its first join and left, and its listings."""

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


def drafts(
    events: Sequence[RoomEvent], snapshots: Sequence[Snapshot], room: str, lobby: bool = False
) -> list[Draft]:
    """The room's occupant sessions, or with `lobby` its lobby's (knocks): the same rules,
    from lobby.joined / lobby.left and the snapshots' `lobby` listings."""
    joined, left = (
        (EventType.LOBBY_JOINED, EventType.LOBBY_LEFT)
        if lobby
        else (EventType.OCCUPANT_JOINED, EventType.OCCUPANT_LEFT)
    )
    found: dict[str, Draft] = {}
    for event in events:
        if event.occupant is None or event.type not in (joined, left):
            continue
        draft = found.setdefault(event.occupant.session, Draft(event.occupant.session))
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
                draft = found.setdefault(occupant.session, Draft(occupant.session))
                draft.listings.append(
                    (snap, occupant.joined_at, occupant.user_id, listed_room.meeting_id)
                )
    return sorted(found.values(), key=lambda d: d.session)


def left_reason(reason: str | None, allowed: frozenset[EndReason] = ROOM_LEFT_REASONS) -> EndReason:
    """The end reason a sender reported, or `unknown` for one it may not report."""
    try:
        parsed = EndReason(reason or "unknown")
    except ValueError:
        return EndReason.UNKNOWN
    # A sender may only report how an occupant left; repairs are the service's own words.
    return parsed if parsed in allowed else EndReason.UNKNOWN


def last_seen(draft: Draft, joined: int, room_events: Sequence[RoomEvent]) -> int:
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


# --- hosts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostLog:
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


def host_logs(
    room_events: Sequence[RoomEvent],
    snapshots: Sequence[Snapshot],
    restarts: Sequence[ProsodyStarted],
) -> dict[HostKey, HostLog]:
    """Keyed by (host, boot): only a boot that announced its snapshot interval can be silent
    (event_sync never does; a module with snapshots off neither)."""
    heard: dict[str, set[int]] = {}
    intervals: dict[HostKey, list[tuple[int, int]]] = {}
    items: list[RoomEvent | Snapshot | ProsodyStarted] = [*room_events, *snapshots, *restarts]
    for item in items:
        heard.setdefault(item.host, set()).add(item.occurred_at)
    for snap in snapshots:
        if snap.interval_s is not None:
            key = (snap.host, snap.boot_id)
            intervals.setdefault(key, []).append((snap.occurred_at, snap.interval_s * 1000))
    return {
        key: HostLog(tuple(sorted(heard[key[0]])), tuple(sorted(set(announced))))
        for key, announced in intervals.items()
    }


# --- a room's inputs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RoomInputs:
    """One room's inputs as sessions are built from them: deduplicated, in time order."""

    room: str  # lower case, as events name it
    events: list[RoomEvent]  # this room's events only
    snapshots: list[Snapshot]
    restarts: list[ProsodyStarted]
    destroys: list[RoomEvent]
    hosts: Mapping[HostKey, HostLog]


def room_inputs(
    events: Iterable[RoomEvent],
    snapshots: Iterable[Snapshot],
    restarts: Iterable[ProsodyStarted],
    room_name: str,
) -> RoomInputs:
    """The inputs for `room_name`: other rooms' events dropped, repeats of an id removed."""
    room = room_name.lower()
    room_events = [e for e in unique(events) if e.room_name == room]
    snaps = unique(snapshots)
    boots = unique(restarts)
    return RoomInputs(
        room=room,
        events=room_events,
        snapshots=snaps,
        restarts=boots,
        destroys=[e for e in room_events if e.type is EventType.ROOM_DESTROYED],
        hosts=host_logs(room_events, snaps, boots),
    )


# --- ends and repairs --------------------------------------------------------------------------


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


def _signs(
    draft: Draft, joined: int, inputs: RoomInputs, destroys: Sequence[RoomEvent]
) -> list[tuple[int, int, EndReason]]:
    """(time, rank, reason) of each sign that the session is gone; at equal times the most
    specific reason (lowest rank) wins."""
    listed = {snap.id for snap, *_ in draft.listings}
    signs: list[tuple[int, int, EndReason]] = []
    for destroy in destroys:
        if _destroy_closes(destroy, draft.meeting_id, joined):
            signs.append((destroy.occurred_at, 0, EndReason.ROOM_DESTROYED))
    for restart in inputs.restarts:
        if (
            restart.host == draft.host
            and restart.boot_id != draft.boot_id
            and restart.occurred_at > joined
        ):
            signs.append((restart.occurred_at, 1, EndReason.PROSODY_RESTART))
    for snap in inputs.snapshots:
        # Snapshots are sorted, so the first one that omits the session is the earliest.
        if snap.host == draft.host and snap.occurred_at > joined and snap.id not in listed:
            signs.append((snap.occurred_at, 2, EndReason.SNAPSHOT_REPAIR))
            break
    return signs


def _repair(
    draft: Draft,
    inputs: RoomInputs,
    destroys: Sequence[RoomEvent],
    now_ms: int,
    max_call_ms: int,
) -> _Closure | None:
    """How to close a session with no known `occupant.left`, or None if it is still open.

    The first sign that it is gone decides: the room's destruction, a restart of its Prosody
    (another boot), or the first snapshot of its host that omits it. A destruction or an
    omitting snapshot closes it at its own time (late by less than a snapshot interval); a
    restart closes it at the last moment it was known present (see `last_seen`), since
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
    signs = _signs(draft, joined, inputs, destroys)
    seen = last_seen(draft, joined, inputs.events)
    host = inputs.hosts.get((draft.host, draft.boot_id)) if draft.host is not None else None
    if signs:
        at, _, reason = min(signs)
        earliest = min(seen + 1, at)
        if host is not None and host.silent_at(seen, at) is not None:
            return _Closure(earliest, EndReason.HOST_SILENT, earliest, at)
        if reason is EndReason.PROSODY_RESTART:
            return _Closure(earliest, reason, earliest, at)
        return _Closure(at, reason, earliest, at)
    if host is not None and host.silent_at(seen, now_ms) is not None:
        return _Closure(seen + 1, EndReason.HOST_SILENT, seen + 1, None)
    if now_ms > seen + max_call_ms:
        return _Closure(seen + 1, EndReason.SWEEPER, seen + 1, None)
    return None


@dataclass(frozen=True)
class BuiltSession:
    """A draft with its end decided."""

    draft: Draft
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


def _with_left(draft: Draft, left: RoomEvent, role: Role) -> BuiltSession:
    """A session ended by its real left, which always wins over any repair (a late left of an
    old session included)."""
    joined = draft.joined_at
    left_at = left.occurred_at if joined is None else max(joined, left.occurred_at)
    allowed = LOBBY_LEFT_REASONS if left.type is EventType.LOBBY_LEFT else ROOM_LEFT_REASONS
    reason = left_reason(left.reason, allowed)
    return BuiltSession(draft, role, left_at, reason, False, left_at, left_at)


def build_sessions(
    inputs: RoomInputs,
    *,
    lobby: bool,
    doctor_uid: str,
    patient_uid: str,
    now_ms: int,
    max_call_ms: int,
) -> list[BuiltSession]:
    """The room's sessions, or with `lobby` its knocks, each with its end decided.

    The lobby room's own destruction is not reported (the module on the lobby component sends
    only lobby events and snapshots), so no destroy closes a knock."""
    destroys = () if lobby else inputs.destroys
    built = []
    for draft in drafts(inputs.events, inputs.snapshots, inputs.room, lobby):
        role = role_in(doctor_uid, patient_uid, draft.user_id)
        if draft.left is not None:
            built.append(_with_left(draft, draft.left, role))
            continue
        closure = None
        if draft.joined_at is not None:
            closure = _repair(draft, inputs, destroys, now_ms, max_call_ms)
        if closure is None:
            built.append(BuiltSession(draft, role, None, None, False))
        else:
            built.append(
                BuiltSession(
                    draft, role, closure.at, closure.reason, True, closure.earliest, closure.latest
                )
            )
    return built


def session_hosts(built: Iterable[BuiltSession]) -> tuple[str, ...]:
    """The hosts a call's sessions and knocks came from, sorted.

    A snapshot or a restart that does not list the room changes a session only through its
    own host: it may close an open one (an omission, another boot) or move a repair (an
    earlier sign, a silence it breaks). No other part of the record reads such an input. So
    a call need not be derived again for another host's snapshot or restart
    (tests/unit/test_incremental.py checks that skipping them changes nothing). Its own
    hosts' are applied even while nobody is in the room, so that its summary counts them and
    the next join is still a step (record.watched_hosts applies this rule to the stored call).
    """
    return tuple(sorted({b.draft.host for b in built if b.draft.host is not None}))
