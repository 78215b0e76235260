"""Incremental application equals the full derivation, whatever arrives in whatever order.

A `Replica` plays the service's part for one call: it stores what arrives (a repeated id is
ignored, as the store does), applies a room event with `advance` when it can and derives in
full otherwise, and reads its inputs in the window that store/event_log.py's `load_for_room`
reads. After every room event its record and sessions must be exactly `derive_call`'s over
everything stored, at the same `now`. A snapshot or restart is applied only where the
service applies it (it lists the room, or the call is watched on its host: other hosts'
traffic is mixed in), and then, drawn at random, not at all (a crash before its step),
which the state must notice by its counts; one skipped because it cannot concern the call
must indeed change nothing.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from service.domain.incremental import CallState, Counts, advance, confirm, state_of
from service.domain.model import CallStatus, EndReason
from service.domain.presence import CallDerivation, Params, PresenceSession, derive_call
from service.domain.prosody import (
    EventType,
    Occupant,
    ProsodyStarted,
    RoomEvent,
    Snapshot,
    SnapshotOccupant,
    SnapshotRoom,
)
from service.domain.record import watched_hosts
from tests.unit.test_presence_properties import (
    BOOT,
    DOC,
    GRACE,
    HOST,
    MAX_CALL,
    NO_SHOW_GRACE,
    PAT,
    PROPERTY,
    ROOM,
    SNAP,
    T0,
    History,
    crashes,
    histories,
    waiting_rooms,
)

Item = RoomEvent | Snapshot | ProsodyStarted
# Delivery delays: on time, a little late, and late enough to cross a silence, a grace or the
# longest call.
LATENESS = (0, 0, 0, 1, 999, 30_000, SNAP, 3 * SNAP, GRACE, GRACE + 1, MAX_CALL + 1)
# Another Prosody host of the fleet: its snapshots list other rooms, and it restarts.
OTHER = "muc2.meet.test"


class Replica:
    def __init__(self, params: Params) -> None:
        self.params = params
        self.stored: dict[str, Item] = {}
        self.state: CallState | None = None
        self.record: CallDerivation | None = None
        self.sessions: dict[str, PresenceSession] = {}
        self.steps = 0
        self.full = 0
        # Check against the full derivation after every this many applied inputs.
        self.check_every = 1
        self.applied = 0

    def load(self) -> tuple[list[RoomEvent], list[Snapshot], list[ProsodyStarted]]:
        """As store/event_log.py's load_for_room: snapshots from the room's first event or
        listing to its last plus the longest call, restarts from that first one on."""
        events = [i for i in self.stored.values() if isinstance(i, RoomEvent)]
        snaps = [i for i in self.stored.values() if isinstance(i, Snapshot)]
        boots = [i for i in self.stored.values() if isinstance(i, ProsodyStarted)]
        listed = [s for s in snaps if any(r.room_name == ROOM for r in s.rooms)]
        times = [e.occurred_at for e in events] + [s.occurred_at for s in listed]
        if not times:
            return [], [], []
        start, end = min(times), max(times) + MAX_CALL
        return (
            events,
            [s for s in snaps if start <= s.occurred_at <= end],
            [b for b in boots if b.occurred_at >= start],
        )

    def derive(self, now: int, without: str | None = None) -> CallDerivation:
        events, snaps, boots = self.load()
        if without is not None:
            snaps = [s for s in snaps if s.id != without]
            boots = [b for b in boots if b.id != without]
        return derive_call(events, snaps, boots, self.params, now_ms=now)

    def derive_in_full(self, now: int) -> None:
        full = self.derive(now)
        self.full += 1
        self.record = replace(full, sessions=(), repairs=())
        self.sessions = {s.session: s for s in full.sessions}
        self.state = state_of(full, *self.load(), self.params, now)

    def counts(self, state: CallState) -> Counts:
        """As store/summaries.py's `counts`."""
        since = [i for i in self.stored.values() if i.occurred_at >= state.window_start]
        return Counts(
            sum(1 for i in since if isinstance(i, Snapshot) and _lists_room(i)),
            tuple(
                (host, sum(1 for i in since if not isinstance(i, RoomEvent) and i.host == host))
                for host, _ in state.counts.inputs
            ),
        )

    def concerned(self, item: Snapshot | ProsodyStarted) -> bool:
        """Whether the service applies `item` to the call (tracking.py::_affected_calls)."""
        if isinstance(item, Snapshot) and _lists_room(item):
            return True
        if self.record is None:
            return False
        return item.host in watched_hosts(self.record)

    def receive(self, item: Item, now: int, applied: bool = True) -> None:
        if item.id in self.stored:
            return  # the store keeps the first copy and acknowledges the repeat
        self.stored[item.id] = item
        if not isinstance(item, RoomEvent) and not self.concerned(item):
            if self.record is not None and watched_hosts(self.record):
                # Not applied because it cannot change the record: it must not.
                assert self.derive(now) == self.derive(now, without=item.id)
            return
        if isinstance(item, ProsodyStarted) or (isinstance(item, Snapshot) and not applied):
            if applied:
                self.derive_in_full(now)
            return
        step = None
        if self.state is not None and isinstance(item, Snapshot):
            listing = [room for room in item.rooms if room.room_name == ROOM]
            step = confirm(
                self.state,
                item,
                listing,
                params=self.params,
                now_ms=now,
                counts=self.counts(self.state),
            )
        elif self.state is not None and isinstance(item, RoomEvent):
            step = advance(
                self.state,
                item,
                params=self.params,
                now_ms=now,
                room_events=sum(1 for i in self.stored.values() if isinstance(i, RoomEvent)),
                counts=self.counts(self.state),
                session_known=item.occupant is not None and item.occupant.session in self.sessions,
            )
        if step is None:
            self.derive_in_full(now)
        else:
            self.steps += 1
            self.record = step.record
            if step.session is not None:
                self.sessions[step.session.session] = step.session
            self.state = step.state
        self.applied += 1
        if self.applied % self.check_every == 0:
            self.check(now)

    def check(self, now: int) -> None:
        expected = self.derive(now)
        assert self.record == replace(expected, sessions=(), repairs=())
        assert self.sessions == {s.session: s for s in expected.sessions}


def _lists_room(snapshot: Snapshot) -> bool:
    return any(room.room_name == ROOM for room in snapshot.rooms)


def params_of(history: History) -> Params:
    return Params(ROOM, DOC, PAT, history.appointment_end_ms, GRACE, NO_SHOW_GRACE, MAX_CALL)


def stream_of(history: History) -> list[Item]:
    items: list[Item] = [*history.events, *history.snapshots, *history.restarts]
    return sorted(items, key=lambda i: (i.occurred_at, i.seq, i.id))


def replay(
    history: History,
    items: list[Item],
    data: st.DataObject,
    lateness: tuple[int, ...] = LATENESS,
) -> Replica:
    replica = Replica(params_of(history))
    now = T0
    mixed = data.draw(st.booleans())
    if mixed and items:
        items = with_other_host(items, data)
    for item in items:
        now = max(now, item.occurred_at) + data.draw(st.sampled_from(lateness))
        replica.receive(item, now, applied=data.draw(st.booleans()))
    return replica


def with_other_host(items: list[Item], data: st.DataObject) -> list[Item]:
    """`items` with another host's snapshots every 30 s over their span (listing another
    room, announcing an interval or not) and maybe its restart, each at its time."""
    first = min(i.occurred_at for i in items)
    last = max(i.occurred_at for i in items)
    interval_s = data.draw(st.sampled_from([None, 30]))
    other: list[Item] = []
    for n, at in enumerate(range(first + data.draw(st.integers(0, 29_999)), last + 1, 30_000)):
        room = SnapshotRoom("another-room", "x0", (SnapshotOccupant("x", "someone", first),))
        snap_id = f"evt_{n:08d}-0000-4000-8000-0000000000aa"
        other.append(Snapshot(snap_id, at, OTHER, "other-boot", n, (room,), interval_s))
    if data.draw(st.booleans()):
        at = data.draw(st.integers(first, last))
        other.append(ProsodyStarted("evt_eeeeeeee-0000-4000-8000-0000000000aa", at, OTHER,
                                    "other-boot2", 0))  # fmt: skip
    return sorted([*items, *other], key=lambda i: i.occurred_at)


def with_repeats(items: list[Item], data: st.DataObject) -> list[Item]:
    if not items:
        return items
    repeats = data.draw(st.lists(st.sampled_from(items), max_size=len(items)))
    merged = list(items)
    for repeat in repeats:
        # A repeat arrives after its first copy (a retry), anywhere later.
        first = merged.index(repeat)
        merged.insert(data.draw(st.integers(first + 1, len(merged))), repeat)
    return merged


@PROPERTY
@given(st.one_of(histories(), waiting_rooms(), crashes().map(lambda c: c.history)), st.data())
def test_every_prefix_in_order_with_repeats(history: History, data: st.DataObject) -> None:
    replay(history, with_repeats(stream_of(history), data), data)


@PROPERTY
@given(st.one_of(histories(), crashes().map(lambda c: c.history)), st.data())
def test_every_prefix_of_any_permutation(history: History, data: st.DataObject) -> None:
    items = data.draw(st.permutations(stream_of(history)))
    replay(history, with_repeats(items, data), data)


@PROPERTY
@given(histories(), st.data())
def test_every_prefix_with_events_lost(history: History, data: st.DataObject) -> None:
    items = stream_of(history)
    lost = data.draw(st.sets(st.sampled_from([i.id for i in items])))
    replay(history, [i for i in items if i.id not in lost], data)


@st.composite
def consultations(draw: st.DrawFn) -> History:
    """A consultation read while it runs: doctor, patient and maybe others come and go on a
    1 s grid (reconnects after no gap, seconds, or a grace), snapshots every 30 s list who
    is there, and Prosody may crash part-way (restarting, or falling silent)."""
    people = [
        DOC,
        PAT,
        *draw(st.lists(st.sampled_from(["interpreter", None, DOC, PAT]), max_size=2)),
    ]
    stays: list[tuple[str, str | None, int, int]] = []
    for uid in people:
        at = T0 + draw(st.integers(0, 120)) * 1000
        for _ in range(draw(st.integers(1, 10))):
            length = draw(st.integers(1, 400)) * 1000
            stays.append((f"s{len(stays)}", uid, at, at + length))
            at += length + draw(st.sampled_from([0, 1000, 5000, 60_000, GRACE]))
    last = max(left for *_, left in stays)
    crash = draw(st.none() | st.integers(T0, last))
    interval_s = draw(st.sampled_from([None, 30]))
    raw: list[tuple[int, Item]] = []
    for session, uid, joined, left in stays:
        who = Occupant(session, uid)
        for kind, at, reason in (
            (EventType.OCCUPANT_JOINED, joined, None),
            (EventType.OCCUPANT_LEFT, left, "left"),
        ):
            if crash is None or at < crash:
                raw.append((at, RoomEvent("", kind, at, HOST, BOOT, 0, ROOM, "m0", who, reason)))
    for at in range(T0 + 500, (crash or last) + 60_000, 30_000):
        listing = tuple(SnapshotOccupant(s, uid, j) for s, uid, j, left in stays if j <= at < left)
        rooms = (SnapshotRoom(ROOM, "m0", listing),) if listing else ()
        raw.append((at, Snapshot("", at, HOST, BOOT, 0, rooms, interval_s)))
    restarts: tuple[ProsodyStarted, ...] = ()
    if crash is not None and draw(st.booleans()):
        back = crash + draw(st.sampled_from([5_000, 30_000, 300_000]))
        restarts = (ProsodyStarted("evt_ffffffff-0000-4000-8000-000000000000", back, HOST,
                                   "boot2", 0),)  # fmt: skip
    raw.sort(key=lambda r: r[0])
    events: list[RoomEvent] = []
    snapshots: list[Snapshot] = []
    for seq, (_, item) in enumerate(raw):
        fields = {**item.__dict__, "seq": seq, "id": f"evt_{seq:08d}-0000-4000-8000-000000000000"}
        if isinstance(item, RoomEvent):
            events.append(RoomEvent(**fields))
        else:
            snapshots.append(Snapshot(**fields))
    ends = draw(st.none() | st.integers(T0, last))
    return History((), tuple(events), tuple(snapshots), (), last, ends, restarts)


@PROPERTY
@given(consultations(), st.data())
def test_every_prefix_of_a_running_consultation(history: History, data: st.DataObject) -> None:
    items = stream_of(history)
    lost = data.draw(st.sets(st.sampled_from([i.id for i in items]), max_size=3))
    items = [i for i in items if i.id not in lost]
    for _ in range(data.draw(st.integers(0, 3))):
        # A few deliveries overtake the one before them.
        if len(items) > 1:
            index = data.draw(st.integers(0, len(items) - 2))
            items[index], items[index + 1] = items[index + 1], items[index]
    replay(history, with_repeats(items, data), data, lateness=(0, 0, 0, 200, 1500, 30_000, 90_000))


def _event(
    n: int, kind: EventType, at: int, who: Occupant | None, reason: str | None = None
) -> RoomEvent:
    return RoomEvent(
        id=f"evt_{n:08d}-0000-4000-8000-000000000000",
        type=kind,
        occurred_at=at,
        host=HOST,
        boot_id=BOOT,
        seq=n,
        room_name=ROOM,
        meeting_id="m0",
        occupant=who,
        reason=reason,
    )


def test_a_flapping_consultation_is_applied_incrementally() -> None:
    """Four hours of a patient reconnecting every 40 s beside a doctor who stays, with a
    snapshot every minute: nearly every event takes the incremental step, and each step's
    record is the full derivation's."""
    replica = Replica(Params(ROOM, DOC, PAT, None, GRACE, NO_SHOW_GRACE, MAX_CALL))
    doctor = Occupant("doc-1", DOC)
    items: list[Item] = [
        _event(0, EventType.ROOM_CREATED, T0, None),
        _event(1, EventType.OCCUPANT_JOINED, T0 + 1, doctor),
    ]
    stays = [("doc-1", DOC, T0 + 1, T0 + 5 * 3600_000)]
    end = T0 + 4 * 3600_000
    for patient, at in enumerate(range(T0 + 10_000, end, 40_000)):
        who = Occupant(f"pat-{patient}", PAT)
        items.append(_event(len(items), EventType.OCCUPANT_JOINED, at, who))
        items.append(_event(len(items), EventType.OCCUPANT_LEFT, at + 38_000, who, "left"))
        stays.append((who.session, PAT, at, at + 38_000))
    for at in range(T0 + 30_500, end, SNAP):
        listing = tuple(SnapshotOccupant(s, uid, j) for s, uid, j, left in stays if j <= at < left)
        snap_id = f"evt_{len(items):08d}-0000-4000-8000-000000000000"
        room = SnapshotRoom(ROOM, "m0", listing)
        items.append(Snapshot(snap_id, at, HOST, BOOT, len(items), (room,), SNAP // 1000))
    items.sort(key=lambda i: (i.occurred_at, i.seq))
    replica.check_every = 25  # each check reads everything: keep the test quick
    for item in items:
        replica.receive(item, item.occurred_at + 200)
    replica.check(items[-1].occurred_at + 200)
    assert replica.record is not None and replica.record.status is CallStatus.IN_PROGRESS
    events = sum(1 for i in items if isinstance(i, RoomEvent))
    # Only the first events (before the call started) derive in full; snapshots confirm.
    assert replica.full <= 4 and replica.steps >= events - 4
    assert replica.record.patient_presence_s == (len(stays) - 1) * 38


def _script(*steps: tuple[EventType, str, str | None, int, int]) -> Replica:
    """Deliver (type, session, user, occurred offset, delivered offset) one by one."""
    replica = Replica(Params(ROOM, DOC, PAT, None, GRACE, NO_SHOW_GRACE, MAX_CALL))
    for n, (kind, session, uid, at, delivered) in enumerate(steps):
        reason = "left" if kind is EventType.OCCUPANT_LEFT else None
        event = _event(n, kind, T0 + at, Occupant(session, uid), reason)
        replica.receive(event, T0 + delivered)
    return replica


JOINED, LEFT = EventType.OCCUPANT_JOINED, EventType.OCCUPANT_LEFT


def test_a_return_after_the_grace_is_a_new_life_not_a_step() -> None:
    """Everyone left; a join a whole grace later finds the call completed in between."""
    replica = _script(
        (JOINED, "d", DOC, 0, 0),
        (JOINED, "p", PAT, 1000, 1001),
        (LEFT, "p", PAT, 60_000, 60_000),
        (LEFT, "d", DOC, 61_000, 61_000),  # a step: nobody is left
        (JOINED, "p2", PAT, 61_000 + GRACE, 61_000 + GRACE),
    )
    assert replica.steps == 2
    assert replica.record is not None and replica.record.status is CallStatus.COMPLETED


def test_a_delivery_later_than_the_longest_call_is_not_a_step() -> None:
    """An open session unseen for longer than the longest call is the sweeper's to close."""
    replica = _script(
        (JOINED, "d", DOC, 0, 0),
        (JOINED, "p", PAT, 1000, 1001),
        (JOINED, "x", "interpreter", 2000, 2000),
        (LEFT, "x", "interpreter", 3000, 3001 + MAX_CALL),
    )
    assert replica.steps == 1
    assert replica.record is not None and replica.record.status is CallStatus.COMPLETED


def test_a_snapshot_with_someone_knocking_is_not_a_confirmation() -> None:
    """A knock the call did not know is a new lobby visit: derived in full."""
    replica = _script((JOINED, "d", DOC, 0, 0), (JOINED, "p", PAT, 1000, 1001))
    at = T0 + 30_000
    listed = (SnapshotOccupant("d", DOC, T0), SnapshotOccupant("p", PAT, T0 + 1000))
    quiet = SnapshotRoom(ROOM, "m0", listed)
    replica.receive(Snapshot("evt_s0000001-0000-4000-8000-000000000000", at, HOST, BOOT, 10,
                             (quiet,), 30), at + 5)  # fmt: skip
    assert replica.steps == 1  # it confirms who is there
    knocking = SnapshotRoom(ROOM, "m0", listed, (SnapshotOccupant("k", "interpreter", at),))
    replica.receive(Snapshot("evt_s0000002-0000-4000-8000-000000000000", at + 30_000, HOST,
                             BOOT, 11, (knocking,), 30), at + 30_005)  # fmt: skip
    assert replica.steps == 1
    assert replica.record is not None and len(replica.record.lobby) == 1


def test_a_rejoin_after_everyone_left_is_still_a_step() -> None:
    """With nobody in the room the call stays watched on its host, so that host's snapshot
    meanwhile is applied (it confirms an empty room) and counted, and the next join is a
    step that knows the interval the snapshot announced."""
    replica = _script(
        (JOINED, "d", DOC, 0, 0),
        (JOINED, "p", PAT, 1000, 1001),
        (LEFT, "p", PAT, 60_000, 60_000),
        (LEFT, "d", DOC, 61_000, 61_000),
    )
    assert replica.record is not None and replica.record.hosts == (HOST,)
    at = T0 + 70_000
    steps = replica.steps
    replica.receive(Snapshot("evt_s0000001-0000-4000-8000-000000000000", at, HOST, BOOT, 10,
                             (), 30), at + 5)  # fmt: skip
    assert replica.steps == steps + 1
    full = replica.full
    replica.receive(_event(11, JOINED, T0 + 80_000, Occupant("d2", DOC)), T0 + 80_000)
    replica.receive(_event(12, JOINED, T0 + 81_000, Occupant("p2", PAT)), T0 + 81_000)
    assert replica.full == full
    # Delivered long after its host fell silent: d2 is closed as host_silent by then.
    replica.receive(_event(13, LEFT, T0 + 82_000, Occupant("p2", PAT), "left"), T0 + 400_000)
    assert replica.sessions["d2"].end_reason is EndReason.HOST_SILENT


def test_a_join_from_another_host_derives_in_full() -> None:
    """That host's snapshots were neither applied nor counted while none of the call's
    sessions came from it, so its first session cannot be a step; the interval it announced
    then makes its later silence known."""
    replica = _script((JOINED, "d", DOC, 0, 0), (JOINED, "p", PAT, 1000, 1001))
    at = T0 + 10_000
    applied = replica.applied
    room = SnapshotRoom("another-room", "x0", ())
    replica.receive(Snapshot("evt_s0000001-0000-4000-8000-000000000000", at, OTHER,
                             "other-boot", 1, (room,), 30), at + 5)  # fmt: skip
    assert replica.applied == applied  # not the call's: not applied
    full = replica.full
    visitor = RoomEvent("evt_s0000002-0000-4000-8000-000000000000", JOINED, T0 + 20_000,
                        OTHER, "other-boot", 2, ROOM, "m0",
                        Occupant("x", "interpreter"))  # fmt: skip
    replica.receive(visitor, T0 + 20_000)
    assert replica.full == full + 1
    replica.receive(_event(13, LEFT, T0 + 21_000, Occupant("p", PAT), "left"), T0 + 400_000)
    assert replica.sessions["x"].end_reason is EndReason.HOST_SILENT
