"""Incremental presence: an in-order occupant event applied from a call's stored state.

`derive_call` (service.domain.presence) stays the specification: it reads every event of the
room, so a room's 5,000th event cost 25 times its 10th. Most events of a long consultation
are a join or a left that is later than everything the call has seen, while someone is in
the room and the call is in progress. For exactly those, `advance` computes the same record
from a small summary (`CallState`) of the previous derivation, in time independent of the
room's history. Everything else (an event older than the call's latest input, a snapshot, a
restart, a repair, a session that is not new or not open, a record about to settle) returns
None, and the caller derives in full and summarises again with `state_of`.

Why the summary is enough (each point is checked by tests/unit/test_incremental.py, which
compares `advance` with `derive_call` on every prefix, permutation and duplication of
generated histories):
- Sessions closed by a real `occupant.left` never change again under later events (the
  first join and the first left decide). Their presence is kept per role as merged blocks:
  blocks that end before the role's earliest open join can no longer overlap anything later
  and are kept only as a length (`sealed_ms`); the others (`live`) stay as intervals.
- The overlap that started the call lies before every later event, so it stays the first;
  it is before the unmoved no-show deadline, which late clinics only move later.
- A grace cutoff needs nobody present for the grace: only the last departure matters when
  nobody is open (`idle_since`); a destroy cutoff needs a destroy, which falls back.
- An open session is repaired only by a sign (a destroy, a restart, an omitting snapshot:
  none of them take this path) or by silence or age, which depend on its last moment known
  present, the last time its host was heard and the host's snapshot interval: all kept.
- A snapshot or restart of a host none of the call's sessions came from, that does not list
  the room, cannot change the record (sessions.session_hosts): the service does not apply it
  to the call, and the state does not count it (`Counts`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from service.domain.intervals import union
from service.domain.model import CallStatus, Role, role_in
from service.domain.presence import CallDerivation, Params, PresenceSession
from service.domain.prosody import EventType, ProsodyStarted, RoomEvent, Snapshot, SnapshotRoom
from service.domain.rules import whole_seconds
from service.domain.sessions import drafts, last_seen, left_reason, room_inputs, silent_from

Block = tuple[int, int]
# The only events `advance` applies; anything else derives in full.
INCREMENTAL_TYPES = frozenset({EventType.OCCUPANT_JOINED, EventType.OCCUPANT_LEFT})
PARTIES = (Role.DOCTOR, Role.PATIENT)


@dataclass(frozen=True)
class OpenSession:
    """A counted session with no end. `heard_from`: the last moment its host was heard at or
    after `last_seen` (where the silence clock restarts)."""

    session: str
    user_id: str | None
    role: Role
    joined_at: int
    meeting_id: str | None
    boot_id: str | None
    host: str | None
    last_seen: int
    heard_from: int


@dataclass(frozen=True)
class Counts:
    """Snapshots and restarts from a call's `window_start` on, as far as they concern it:
    `listings`, the snapshots (of any host) that list its room; `inputs`, per host of its
    sessions (sorted), that host's snapshots and restarts. Another host's that do not list
    the room cannot change the record (sessions.session_hosts) and are not counted."""

    listings: int
    inputs: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class CallState:
    """What `advance` needs of the previous derivation (see the module docstring).

    `room_events` and `counts` count the inputs it summarised (the room's events; the
    snapshots and restarts that concern the call, see Counts): the caller passes the stored
    counts, so an input stored without this call being derived again is noticed and the call
    derived in full. `through` is the latest time of any of them.
    """

    params: Params
    record: CallDerivation  # the previous record, without sessions and repairs
    through: int
    room_last: int  # the latest of the room's events and listings (the window's end)
    room_events: int
    counts: Counts
    window_start: int
    sealed_ms: tuple[int, int]  # doctor, patient
    live: tuple[tuple[Block, ...], tuple[Block, ...]]  # doctor, patient
    open: tuple[OpenSession, ...]
    idle_since: int | None  # the last departure, while nobody is open
    # (host, boot, ms): the snapshot interval each boot announced last; a boot without one
    # cannot fall silent.
    intervals: tuple[tuple[str, str | None, int], ...]

    @property
    def hosts(self) -> frozenset[str]:
        """The hosts of its sessions: the only ones whose inputs it counts."""
        return frozenset(host for host, _ in self.counts.inputs)


@dataclass(frozen=True)
class Step:
    """An event applied incrementally: the new record (no sessions), the one session it
    created or closed (None for a snapshot), and the state for the next event."""

    record: CallDerivation
    session: PresenceSession | None
    state: CallState


def _seal(
    blocks: tuple[Block, ...], sealed: int, opens: list[OpenSession]
) -> tuple[tuple[Block, ...], int]:
    """Move blocks that end by the earliest open join of their role into the sealed length:
    every later interval of the role starts after them."""
    first_open = min((s.joined_at for s in opens), default=None)
    kept = []
    for start, end in blocks:
        if first_open is None or end <= first_open:
            sealed += end - start
        else:
            kept.append((start, end))
    return tuple(kept), sealed


def _presence_ms(blocks: tuple[Block, ...], sealed: int, opens: list[OpenSession], now: int) -> int:
    spans = [*blocks, *((s.joined_at, max(now, s.joined_at)) for s in opens)]
    return sealed + sum(int(end - start) for start, end in union(spans))


def state_of(
    derived: CallDerivation,
    events: list[RoomEvent],
    snapshots: list[Snapshot],
    restarts: list[ProsodyStarted],
    params: Params,
    now_ms: int,
) -> CallState | None:
    """The summary of a full derivation (with its inputs) that `advance` continues from, or
    None when the next event could not be applied incrementally anyway."""
    inputs = room_inputs(events, snapshots, restarts, params.room_name)
    room, room_events, snaps = inputs.room, inputs.events, inputs.snapshots
    watched = set(derived.hosts)
    listing = [snap for snap in snaps if any(r.room_name == room for r in snap.rooms)]
    listed_ids = {snap.id for snap in listing}
    others: list[Snapshot | ProsodyStarted] = [*snaps, *inputs.restarts]
    concerning = [i for i in others if i.host in watched or i.id in listed_ids]
    summarised: list[RoomEvent | Snapshot | ProsodyStarted] = [*room_events, *concerning]
    times = [item.occurred_at for item in summarised]
    if (
        derived.status is not CallStatus.IN_PROGRESS
        or derived.started_at is None
        or derived.cutoff is not None
        or derived.repairs
        or not room_events
        or any(s.repaired for s in derived.sessions)
        or any(v.repaired or v.left_at is None for v in derived.lobby)
        or max(times) > now_ms  # a sender's clock ahead of ours: derive in full
    ):
        return None
    if params.appointment_end_ms is not None and (
        derived.started_at >= params.appointment_end_ms + params.no_show_grace_ms
    ):
        return None
    heard: dict[str, int] = {}
    for item in summarised:
        heard[item.host] = max(heard.get(item.host, item.occurred_at), item.occurred_at)
    intervals = {key: log.intervals[-1][1] for key, log in inputs.hosts.items()}
    by_session = {d.session: d for d in drafts(room_events, snaps, room)}
    room_times = [e.occurred_at for e in room_events] + [snap.occurred_at for snap in listing]
    opens = []
    for s in derived.sessions:
        if s.joined_at is None or s.left_at is not None:
            continue
        seen = last_seen(by_session[s.session], s.joined_at, room_events)
        opens.append(
            OpenSession(
                s.session,
                s.user_id,
                s.role,
                s.joined_at,
                s.meeting_id,
                s.boot_id,
                s.host,
                seen,
                max(seen, heard.get(s.host, seen)) if s.host is not None else seen,
            )
        )
    sealed = []
    live = []
    for role in PARTIES:
        closed = union(
            (s.joined_at, s.left_at)
            for s in derived.sessions
            if s.role is role and s.joined_at is not None and s.left_at is not None
        )
        blocks, length = _seal(
            tuple((int(a), int(b)) for a, b in closed), 0, [o for o in opens if o.role is role]
        )
        live.append(blocks)
        sealed.append(length)
    ends = [s.left_at for s in derived.sessions if s.joined_at is not None and s.left_at]
    return CallState(
        params=params,
        record=replace(derived, sessions=(), repairs=()),
        through=max(times),
        room_last=max(room_times),
        room_events=len(room_events),
        counts=Counts(
            len(listing),
            tuple((h, sum(1 for i in concerning if i.host == h)) for h in sorted(watched)),
        ),
        window_start=min(room_times),
        sealed_ms=(sealed[0], sealed[1]),
        live=(live[0], live[1]),
        open=tuple(opens),
        idle_since=None if opens else max(ends, default=None),
        intervals=tuple(sorted((h, b, ms) for (h, b), ms in intervals.items())),
    )


def _interval(intervals: Mapping[tuple[str, str | None], int], s: OpenSession) -> int | None:
    return intervals.get((s.host, s.boot_id)) if s.host is not None else None


def _still_open(
    s: OpenSession,
    at: int,
    host: str,
    present: bool,
    now: int,
    interval: int | None,
    max_call_ms: int,
) -> OpenSession | None:
    """The open session after its room heard from `host` at `at` (`present`: that says it was
    still there), or None if by `now` it would be repaired: its host silent (unheard for
    SILENT_INTERVALS of its `interval`), or unseen for longer than the longest call."""
    last_seen, heard_from = s.last_seen, s.heard_from
    if present:
        last_seen = heard_from = at
    elif host == s.host:
        if interval is not None and at >= silent_from(heard_from, interval):
            return None
        heard_from = at
    if interval is not None and now >= silent_from(heard_from, interval):
        return None
    if now > last_seen + max_call_ms:
        return None
    return replace(s, last_seen=last_seen, heard_from=heard_from)


def advance(
    state: CallState,
    event: RoomEvent,
    *,
    params: Params,
    now_ms: int,
    room_events: int,
    counts: Counts,
    session_known: bool,
) -> Step | None:
    """The record after a new `event`, as `derive_call` would give it at `now_ms`, or None.

    `room_events` and `counts` are the stored counts (`event` included, see CallState);
    `session_known`: whether the call already has a session under the event's occupant. An
    event of a host none of its sessions came from derives in full: that host's earlier
    snapshots were not counted (nor applied) while they could not concern the call.
    """
    occupant = event.occupant
    at = event.occurred_at
    if (
        params != state.params
        or occupant is None
        or event.type not in INCREMENTAL_TYPES
        or event.room_name != params.room_name.lower()
        or not state.through < at <= now_ms
        or room_events != state.room_events + 1
        or counts != state.counts
        or event.host not in state.hosts
    ):
        return None
    opens = {s.session: s for s in state.open}
    if event.type is EventType.OCCUPANT_JOINED:
        if session_known or occupant.session in opens:
            return None
        if state.idle_since is not None and at - state.idle_since >= params.call_end_grace_ms:
            return None  # the call ended in that gap: a cutoff, derive in full
        opens[occupant.session] = OpenSession(
            occupant.session,
            occupant.user_id,
            role_in(params.doctor_uid, params.patient_uid, occupant.user_id),
            at,
            event.meeting_id,
            event.boot_id,
            event.host,
            at,
            at,
        )
        closed: OpenSession | None = None
    else:
        closed = opens.pop(occupant.session, None)
        if closed is None:
            return None
    intervals = {(h, b): ms for h, b, ms in state.intervals}
    following: list[OpenSession] = []
    for s in opens.values():
        # Events are created in order: whatever its boot reported later, it was still there.
        same_life = event.meeting_id == s.meeting_id and event.boot_id == s.boot_id
        interval = _interval(intervals, s)
        kept = _still_open(s, at, event.host, same_life, now_ms, interval, params.max_call_ms)
        if kept is None:
            return None
        following.append(kept)
    if closed is None:
        session = PresenceSession(
            session=occupant.session,
            user_id=occupant.user_id,
            role=opens[occupant.session].role,
            joined_at=at,
            left_at=None,
            end_reason=None,
            boot_id=event.boot_id,
            host=event.host,
            meeting_id=event.meeting_id,
            repaired=False,
            counted=True,
        )
    else:
        session = PresenceSession(
            session=closed.session,
            user_id=closed.user_id,
            role=closed.role,
            joined_at=closed.joined_at,
            left_at=at,
            end_reason=left_reason(event.reason),
            boot_id=closed.boot_id,
            host=closed.host,
            meeting_id=closed.meeting_id,
            repaired=False,
            counted=True,
        )
    changed = replace(state, room_last=at, room_events=room_events)
    return _finish(changed, params, now_ms, at, following, closed, session)


def confirm(
    state: CallState,
    snapshot: Snapshot,
    listing: Sequence[SnapshotRoom],
    *,
    params: Params,
    now_ms: int,
    counts: Counts,
) -> Step | None:
    """The record after a new `snapshot` that confirms what the call knows, or None.

    `listing`: the snapshot's entries for this call's room; `counts`: the stored counts for
    the state's hosts (`snapshot` included). It confirms when it lists exactly sessions the
    call has open (none of them in the lobby) and omits none of its host's: it then only
    says they were there (their last moment known present) and that its host was alive,
    which moves no end, no start and no status by itself.
    """
    at = snapshot.occurred_at
    inputs = dict(state.counts.inputs)
    if snapshot.host in inputs:
        inputs[snapshot.host] += 1
    elif not listing:
        return None  # it cannot concern the call (see Counts): not counted, so not applied
    expected = Counts(state.counts.listings + (1 if listing else 0), tuple(sorted(inputs.items())))
    if (
        params != state.params
        or not state.through < at <= now_ms
        or counts != expected
        or any(room.lobby for room in listing)
    ):
        return None
    if not listing and at > state.room_last + params.max_call_ms:
        # Beyond the window the derivation reads, so it would not count it. (Every open
        # session would be past the longest call by then anyway: a guard, not a case.)
        return None
    listed = {o.session for room in listing for o in room.occupants}
    opens = {s.session: s for s in state.open}
    if listed - opens.keys():
        return None  # a session the call does not have open: a new one, or a lost left
    after = {(h, b): ms for h, b, ms in state.intervals}
    if snapshot.interval_s is not None:
        after[(snapshot.host, snapshot.boot_id)] = snapshot.interval_s * 1000
    following: list[OpenSession] = []
    for s in opens.values():
        present = s.session in listed
        if s.host == snapshot.host and not present and s.joined_at < at:
            return None  # omitted by its own host: repaired by this snapshot
        # Only a session of another host is not listed here, so its interval is unchanged.
        interval = _interval(after, s)
        kept = _still_open(s, at, snapshot.host, present, now_ms, interval, params.max_call_ms)
        if kept is None:
            return None
        following.append(kept)
    changed = replace(
        state,
        room_last=at if listing else state.room_last,
        counts=counts,
        intervals=tuple(sorted((h, b, ms) for (h, b), ms in after.items())),
    )
    return _finish(changed, params, now_ms, at, following, None, None)


def _finish(
    state: CallState,
    params: Params,
    now_ms: int,
    at: int,
    following: list[OpenSession],
    closed: OpenSession | None,
    session: PresenceSession | None,
) -> Step | None:
    """The record and state once `following` are the open sessions after an input at `at`
    (`closed`: the session its left closed), or None if the call completes by `now_ms`."""
    idle_since = None
    if not following:
        # Nobody is in the room: the call completes once nobody has returned for the grace,
        # which is the full derivation's to say.
        idle_since = at if closed is not None else state.idle_since
        if idle_since is None or now_ms >= idle_since + params.call_end_grace_ms:
            return None
    sealed = list(state.sealed_ms)
    live = list(state.live)
    presence = []
    for index, role in enumerate(PARTIES):
        blocks = live[index]
        if closed is not None and closed.role is role:
            blocks = tuple((int(a), int(b)) for a, b in union([*blocks, (closed.joined_at, at)]))
        role_opens = [s for s in following if s.role is role]
        live[index], sealed[index] = _seal(blocks, sealed[index], role_opens)
        presence.append(_presence_ms(live[index], sealed[index], role_opens, now_ms))
    record = replace(
        state.record,
        doctor_presence_s=whole_seconds(presence[0]),
        patient_presence_s=whole_seconds(presence[1]),
        open_sessions=len(following),
    )
    return Step(
        record,
        session,
        replace(
            state,
            record=record,
            through=at,
            sealed_ms=(sealed[0], sealed[1]),
            live=(live[0], live[1]),
            open=tuple(sorted(following, key=lambda s: s.session)),
            idle_since=idle_since,
        ),
    )
