"""Snapshots and restarts applied in bounded steps: the same records as the full derivation,
invisible until stored whole, and finished by a retry after a fault part-way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from service import calls, tracking
from service.config import Settings
from service.domain.prosody import ProsodyStarted, RoomEvent, Snapshot
from service.store import db, uow
from service.store import event_log as event_store
from service.store.models import OccupantSession, ProsodyEvent, SnapshotRoom, VideoCall
from tests.clock import FrozenClock
from tests.usecases.support import Prosody, appointment, derived_from, read

pytestmark = pytest.mark.usefixtures("seeded")

CALLS = 12
STEP = 5  # rooms per listing step in these tests: 12 rooms take three steps


@pytest.fixture(autouse=True)
def small_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracking, "LISTING_STEP", STEP)


class Fleet:
    """CALLS consultations under way on one Prosody, each with doctor and patient present,
    and every event sent kept for the oracle."""

    def __init__(self, settings: Settings, clock: FrozenClock) -> None:
        self.settings = settings
        self.clock = clock
        self.prosody = Prosody()
        self.sent: list[RoomEvent | Snapshot | ProsodyStarted] = []
        self.rooms: dict[str, str] = {}  # room -> call id
        for index in range(CALLS):
            appointment_id = f"fleet{index:02d}"
            appointment(clock, appointment_id)
            grant = calls.initiate(settings, "doc", appointment_id)
            room = grant.call.room_name
            self.rooms[room] = grant.call.id
            t0 = clock.ms - 600_000 + index
            for event in (
                self.prosody.created(room, t0),
                self.prosody.joined(room, f"{room}-doc", "doc", t0 + 1_000),
                self.prosody.joined(room, f"{room}-pat", "pat", t0 + 2_000),
            ):
                self.send(event)

    def send(self, event: RoomEvent | Snapshot | ProsodyStarted) -> tracking.Ingested:
        self.sent.append(event)
        return tracking.ingest(self.settings, event, "contract")

    def snapshot(self, at: int, listed: list[str]) -> Snapshot:
        """A snapshot listing doctor and patient in `listed` rooms only (the others emptied)."""
        rooms: dict[str, list[tuple[str, str | None, int]]] = {
            room: [(f"{room}-doc", "doc", at - 1), (f"{room}-pat", "pat", at - 1)]
            for room in listed
        }
        return self.prosody.snapshot(at, rooms, interval_s=60)

    def expected(self, room: str) -> tuple[Any, ...]:
        """What the full derivation gives from every event sent (the specification)."""
        derived = derived_from(self.settings, self.clock.ms, self.rooms[room], self.sent)
        sessions = tuple(
            (s.session, s.left_at, s.end_reason.value if s.end_reason else None)
            for s in derived.sessions
        )
        open_count = sum(1 for s in derived.sessions if s.left_at is None)
        return (derived.status.value, derived.started_at, open_count, sessions)

    def stored(self, room: str) -> tuple[Any, ...]:
        call_id = self.rooms[room]

        def load() -> tuple[Any, ...]:
            call = VideoCall.get_by_id(call_id)
            sessions = tuple(
                (s.session, s.left_at, s.end_reason)
                for s in OccupantSession.select()
                .where(OccupantSession.call_id == call_id)
                .order_by(OccupantSession.joined_at, OccupantSession.session)
            )
            return (call.status, call.started_at, call.open_sessions, sessions)

        return read(load)

    def assert_as_specified(self) -> None:
        for room in self.rooms:
            assert self.stored(room) == self.expected(room), room


@contextmanager
def counting_transactions() -> Iterator[list[int]]:
    """Counts the outermost write transactions opened while the block runs."""
    opened: list[int] = []
    original = uow.write

    @contextmanager
    def counted() -> Iterator[None]:
        if not getattr(uow._depth, "n", 0):
            opened.append(1)
        with original():
            yield

    uow.write = counted
    try:
        yield opened
    finally:
        uow.write = original


def failing_after(count: int, real: Callable[..., Any]) -> Callable[..., Any]:
    """`real`, except that its call number `count + 1` finds the database gone."""
    done = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if done[0] == count:
            raise db.DatabaseUnavailable("injected")
        done[0] += 1
        return real(*args, **kwargs)

    return wrapper


def test_a_big_snapshot_in_steps_gives_the_full_derivation(
    settings: Settings, clock: FrozenClock
) -> None:
    fleet = Fleet(settings, clock)
    rooms = sorted(fleet.rooms)
    snapshot = fleet.snapshot(clock.ms - 1_000, rooms[::2])  # every other room emptied
    assert fleet.send(snapshot) == tracking.Ingested(new=True, calls=CALLS)
    fleet.assert_as_specified()
    # The emptied rooms' sessions were closed by the snapshot; the listed ones stay open.
    assert {fleet.stored(room)[2] for room in rooms[1::2]} == {0}
    assert {fleet.stored(room)[2] for room in rooms[::2]} == {2}
    assert read(lambda: SnapshotRoom.select().count()) == CALLS // 2


def test_each_step_is_its_own_transaction(
    settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(settings, clock)
    rooms = sorted(fleet.rooms)
    monkeypatch.setattr(tracking, "STEP_BUDGET_S", 0.0)
    monkeypatch.setattr(tracking, "CONFIRM_BATCH", STEP)
    with counting_transactions() as opened:
        fleet.send(fleet.snapshot(clock.ms - 1_000, rooms))
    # Listings of 12 rooms in steps of 5, the header, then the calls it confirms five per
    # step (all of them: it lists who is there).
    assert len(opened) == 3 + 1 + 3
    with counting_transactions() as opened:
        fleet.send(fleet.snapshot(clock.ms - 500, rooms[:STEP]))
    # A snapshot of no more rooms than a step stores its listings with its header; the calls
    # of the 7 rooms it empties are derived in full, one per step.
    assert len(opened) == 1 + 3 + (CALLS - STEP)
    fleet.assert_as_specified()


def test_listings_stored_before_their_header_change_nothing(
    settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(settings, clock)
    rooms = sorted(fleet.rooms)
    before = {room: fleet.stored(room) for room in rooms}
    snapshot = fleet.snapshot(clock.ms - 1_000, rooms[: STEP + 1])  # listings in two steps
    # The sender's listing steps all land, then the header's transaction fails.
    monkeypatch.setattr(event_store, "insert", failing_after(0, event_store.insert))
    with pytest.raises(db.DatabaseUnavailable):
        tracking.ingest(settings, snapshot, "contract")
    monkeypatch.undo()
    monkeypatch.setattr(tracking, "LISTING_STEP", STEP)
    assert read(lambda: ProsodyEvent.select().where(ProsodyEvent.id == snapshot.id).count()) == 0
    # Not yet a snapshot: a room event re-derives its call without it (no repair).
    fleet.send(fleet.prosody.joined(rooms[5], "late-guest", None, clock.ms - 900))
    for room in rooms:
        assert fleet.stored(room)[2] == before[room][2] + (room == rooms[5])
    # The sender's retry stores it whole and applies it.
    fleet.sent.append(snapshot)
    assert tracking.ingest(settings, snapshot, "contract") == tracking.Ingested(True, CALLS)
    fleet.assert_as_specified()


def test_a_fault_part_way_is_finished_by_the_retry(
    settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(settings, clock)
    rooms = sorted(fleet.rooms)
    monkeypatch.setattr(tracking, "STEP_BUDGET_S", 0.0)
    real = tracking._derive_and_apply
    monkeypatch.setattr(tracking, "_derive_and_apply", failing_after(7, real))
    snapshot = fleet.snapshot(clock.ms - 1_000, [])  # every room emptied
    with pytest.raises(db.DatabaseUnavailable):
        fleet.send(snapshot)
    # Seven calls were applied and committed, the others not yet.
    open_now = [fleet.stored(room)[2] for room in sorted(rooms, key=fleet.rooms.__getitem__)]
    assert open_now == [0] * 7 + [2] * (CALLS - 7)
    monkeypatch.setattr(tracking, "_derive_and_apply", real)
    # The retry is a duplicate, and is applied again rather than skipped: to the calls it
    # still concerns (those with sessions open), the others are done.
    retried = tracking.ingest(settings, snapshot, "contract")
    assert retried == tracking.Ingested(False, CALLS - 7)
    fleet.assert_as_specified()
    assert read(lambda: SnapshotRoom.select().count()) == 0


def test_a_restart_is_applied_in_steps_too(
    settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = Fleet(settings, clock)
    monkeypatch.setattr(tracking, "STEP_BUDGET_S", 0.0)
    restarted = Prosody(boot="boot-2", seq=0)
    with counting_transactions() as opened:
        assert fleet.send(restarted.started(clock.ms - 1_000)) == tracking.Ingested(True, CALLS)
    assert len(opened) == 1 + CALLS
    fleet.assert_as_specified()
    assert {fleet.stored(room)[2] for room in fleet.rooms} == {0}
