"""A snapshot or restart is applied to the calls of the rooms it lists and to those watched on
its host, not to every call with someone present: a fleet's hosts each carry their own."""

from __future__ import annotations

from typing import Any

import pytest

from service import calls, sweeper, tracking
from service.config import Settings
from service.domain.prosody import ProsodyStarted, RoomEvent, Snapshot
from service.store import event_log as event_store
from service.store.models import CallHost, VideoCall
from tests.clock import FrozenClock
from tests.usecases.support import Prosody, appointment, derived_from, read, write

pytestmark = pytest.mark.usefixtures("seeded")

A, B = "muc.a.test", "muc.b.test"


class Fleet:
    """Consultations under way on two hosts: two on A, one on B."""

    def __init__(self, settings: Settings, clock: FrozenClock) -> None:
        self.settings = settings
        self.clock = clock
        self.hosts = {A: Prosody(host=A), B: Prosody(host=B)}
        self.sent: list[RoomEvent | Snapshot | ProsodyStarted] = []
        self.rooms: dict[str, tuple[str, str]] = {}  # call id -> (host, room)
        for index, host in enumerate((A, A, B)):
            appointment(clock, f"w{index}")
            grant = calls.initiate(settings, "doc", f"w{index}")
            room = grant.call.room_name
            self.rooms[grant.call.id] = (host, room)
            prosody = self.hosts[host]
            t0 = clock.ms - 300_000 + index
            self.send(prosody.created(room, t0))
            self.send(prosody.joined(room, f"{room}-doc", "doc", t0 + 1_000))
            self.send(prosody.joined(room, f"{room}-pat", "pat", t0 + 2_000))

    def send(self, event: RoomEvent | Snapshot | ProsodyStarted) -> tracking.Ingested:
        self.sent.append(event)
        return tracking.ingest(self.settings, event, "contract")

    def on(self, host: str) -> list[str]:
        return sorted(call_id for call_id, (h, _) in self.rooms.items() if h == host)

    def snapshot(self, host: str, at: int, listed: list[str]) -> Snapshot:
        """`host`'s snapshot listing doctor and patient in the rooms of `listed` calls."""
        rooms: dict[str, list[tuple[str, str | None, int]]] = {
            self.rooms[c][1]: [(f"{self.rooms[c][1]}-{p}", p, at - 1) for p in ("doc", "pat")]
            for c in listed
        }
        return self.hosts[host].snapshot(at, rooms, interval_s=60)

    def row(self, call_id: str) -> VideoCall:
        return read(lambda: VideoCall.get_by_id(call_id))

    def assert_as_specified(self) -> None:
        """Each stored record is the full derivation from every event sent (other hosts'
        included), as of when the call was last derived."""
        for call_id in self.rooms:
            call = self.row(call_id)
            derived = derived_from(self.settings, call.updated_at, call_id, self.sent)
            stored: tuple[Any, ...] = (call.status, call.open_sessions, call.doctor_presence)
            assert stored == (
                derived.status.value,
                derived.open_sessions,
                derived.doctor_presence_s,
            ), call_id


def test_each_call_is_watched_on_the_host_of_its_sessions(
    settings: Settings, clock: FrozenClock
) -> None:
    fleet = Fleet(settings, clock)
    assert {c: fleet.row(c).watched_hosts for c in fleet.rooms} == {
        c: host for c, (host, _) in fleet.rooms.items()
    }
    assert read(lambda: sorted((r.host, r.call_id) for r in CallHost.select())) == sorted(
        (host, c) for c, (host, _) in fleet.rooms.items()
    )


def test_a_snapshot_is_applied_to_its_own_hosts_calls_only(
    settings: Settings, clock: FrozenClock
) -> None:
    fleet = Fleet(settings, clock)
    (on_b,) = fleet.on(B)
    untouched = {c: fleet.row(c).updated_at for c in fleet.on(A)}
    clock.advance(10_000)
    assert fleet.send(fleet.snapshot(B, clock.ms - 500, [on_b])).calls == 1
    fleet.assert_as_specified()
    clock.advance(10_000)
    # B's next snapshot no longer lists the room: its sessions are closed; A's calls are not
    # B's to close, and are not even read.
    assert fleet.send(fleet.snapshot(B, clock.ms - 500, [])).calls == 1
    assert fleet.row(on_b).open_sessions == 0
    assert {c: fleet.row(c).updated_at for c in fleet.on(A)} == untouched
    fleet.assert_as_specified()
    # Its sessions were closed by a repair, which B's later inputs may still move: it stays
    # watched on B until it settles.
    assert fleet.row(on_b).watched_hosts == B
    assert fleet.send(fleet.snapshot(B, clock.ms - 400, [])).calls == 1


def test_a_restart_closes_its_own_hosts_sessions_only(
    settings: Settings, clock: FrozenClock
) -> None:
    fleet = Fleet(settings, clock)
    clock.advance(10_000)
    fleet.hosts[A].boot = "boot-2"
    assert fleet.send(fleet.hosts[A].started(clock.ms - 500)).calls == 2
    assert [fleet.row(c).open_sessions for c in fleet.on(A)] == [0, 0]
    assert [fleet.row(c).open_sessions for c in fleet.on(B)] == [2]
    fleet.assert_as_specified()


def test_calls_open_before_the_migration_take_every_hosts_snapshots_once(
    settings: Settings, clock: FrozenClock
) -> None:
    """The migration marks open calls as watched on every host: the next snapshot of any host
    is applied to them, and says which host they are on."""
    fleet = Fleet(settings, clock)
    first = fleet.on(A)[0]
    every = event_store.EVERY_HOST

    def as_migrated() -> None:
        VideoCall.update(watched_hosts=every).where(VideoCall.id == first).execute()
        CallHost.delete().where(CallHost.call_id == first).execute()
        CallHost.insert(host=every, call_id=first).execute()

    write(as_migrated)
    clock.advance(10_000)
    assert fleet.send(fleet.snapshot(B, clock.ms - 500, fleet.on(B))).calls == 2
    assert fleet.row(first).watched_hosts == A
    assert read(lambda: [r.host for r in CallHost.select().where(CallHost.call_id == first)]) == [A]
    fleet.assert_as_specified()


def test_a_settled_call_is_watched_on_no_host(settings: Settings, clock: FrozenClock) -> None:
    fleet = Fleet(settings, clock)
    call_id = fleet.on(A)[0]
    room = fleet.rooms[call_id][1]
    prosody = fleet.hosts[A]
    fleet.send(prosody.left(room, f"{room}-pat", "pat", clock.ms))
    fleet.send(prosody.left(room, f"{room}-doc", "doc", clock.ms + 1))
    clock.advance(settings.call_end_grace * 1000 + 5_000)
    sweeper.sweep(settings)
    call = fleet.row(call_id)
    assert (call.status, call.watched_hosts) == ("COMPLETED", None)
    assert read(lambda: CallHost.select().where(CallHost.call_id == call_id).count()) == 0
