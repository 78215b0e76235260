"""service.store.event_log: storing Prosody's events once, reading a room's back for
derivation, the derived sessions, and pruning old snapshots."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Any

import pytest

from service.domain.model import CallStatus, EndReason, Role
from service.domain.presence import PresenceSession
from service.domain.prosody import Event, EventType
from service.domain.record import PresenceRecord
from service.store import clinic, event_log, video_calls
from service.store.models import OccupantSession, ProsodyEvent, SnapshotRoom
from tests.clock import HOUR_MS, FrozenClock
from tests.store.support import appointment_row, call_for, user_row
from tests.usecases.support import Prosody

pytestmark = pytest.mark.usefixtures("conn")

ROOM = "appointment_a1"


def seed(clock: FrozenClock, *appointment_ids: str) -> dict[str, str]:
    clinic.upsert_users([user_row(uid, clock.ms) for uid in ("doc", "pat")])
    clinic.upsert_appointments([appointment_row(i, clock.ms, clock.day()) for i in appointment_ids])
    return {i: call_for(i, clock.ms).id for i in appointment_ids}


def test_insert_stores_an_event_once(clock: FrozenClock) -> None:
    prosody = Prosody()
    event = prosody.joined(ROOM, "s1", "doc", clock.ms - 5)
    assert event_log.insert(event, "contract", clock.ms)
    assert not event_log.insert(event, "event_sync", clock.ms + 1)
    row = ProsodyEvent.get_by_id(event.id)
    assert (row.type, row.source, row.host, row.boot_id, row.seq) == (
        "occupant.joined",
        "contract",
        prosody.host,
        "boot-1",
        1,
    )
    assert (row.occurred_at, row.received_at, row.room_name, row.meeting_id) == (
        clock.ms - 5,
        clock.ms,
        ROOM,
        "meeting-1",
    )


def test_snapshots_store_one_listing_per_room(clock: FrozenClock) -> None:
    prosody = Prosody()
    snapshot = prosody.snapshot(
        clock.ms, {ROOM: [("s1", "doc", clock.ms - 10)], "appointment_a2": []}, interval_s=30
    )
    assert event_log.insert(snapshot, "contract", clock.ms)
    row = ProsodyEvent.get_by_id(snapshot.id)
    assert (row.type, row.room_name, row.data) == ("rooms.snapshot", None, '{"interval_s":30}')
    listings = sorted((r.room_name, r.occupants, r.lobby) for r in SnapshotRoom.select())
    assert listings == [
        (
            "appointment_a1",
            f'[{{"joined_at":{clock.ms - 10},"session":"s1","user_id":"doc"}}]',
            None,
        ),
        ("appointment_a2", "[]", None),
    ]
    empty = prosody.snapshot(clock.ms + 1)
    assert event_log.insert(empty, "contract", clock.ms)
    assert SnapshotRoom.select().count() == 2
    restart = prosody.started(clock.ms + 2)
    assert event_log.insert(restart, "contract", clock.ms)
    assert ProsodyEvent.get_by_id(restart.id).type == "prosody.started"


def test_seq_gap(clock: FrozenClock) -> None:
    prosody = Prosody()
    first = prosody.created(ROOM, clock.ms)
    assert not event_log.seq_gap(first)
    event_log.insert(first, "contract", clock.ms)
    second = prosody.joined(ROOM, "s1", "doc", clock.ms)
    assert not event_log.seq_gap(second)
    prosody.seq += 1
    fourth = prosody.left(ROOM, "s1", "doc", clock.ms)
    assert event_log.seq_gap(fourth)
    other_boot = Prosody(boot="boot-2", seq=7).created(ROOM, clock.ms)
    assert event_log.seq_gap(other_boot)
    unnumbered = replace(Prosody().created(ROOM, clock.ms), boot_id=None, seq=None)
    assert not event_log.seq_gap(unnumbered)


def test_load_for_room_returns_the_events_as_they_came(clock: FrozenClock) -> None:
    prosody = Prosody()
    t0 = clock.ms - HOUR_MS
    created = prosody.created(ROOM, t0)
    joined = prosody.joined(ROOM, "s1", "doc", t0 + 1_000)
    recording = prosody.recording(EventType.RECORDING_STARTED, ROOM, "rec", t0 + 2_000)
    elsewhere = prosody.joined("appointment_a2", "s9", "pat", t0 + 1_500)
    before = prosody.snapshot(t0 - 1, {ROOM: [("s0", "pat", t0 - 100)]})
    listing = prosody.snapshot(t0 + 3_000, {ROOM: [("s1", "doc", t0 + 1_000)]}, interval_s=60)
    not_listed = prosody.snapshot(t0 + 4_000, {"appointment_a2": []})
    too_late = prosody.snapshot(t0 + 3_000 + 10_001)
    restart = prosody.started(t0 + 5_000)
    for event in (
        recording,
        joined,
        created,
        elsewhere,
        before,
        listing,
        not_listed,
        too_late,
        restart,
    ):
        event_log.insert(event, "contract", clock.ms)
    room_events, snapshots, restarts = event_log.load_for_room(ROOM, 10_000)
    assert room_events == [created, joined, recording]
    assert [s.id for s in snapshots] == [before.id, listing.id, not_listed.id]
    assert snapshots[1] == listing
    assert snapshots[2].rooms == ()
    assert restarts == [restart]
    assert event_log.load_for_room("appointment_none", 10_000) == ([], [], [])


def presence(**fields: Any) -> PresenceRecord:
    values: dict[str, Any] = dict.fromkeys(f.name for f in dataclasses.fields(PresenceRecord))
    values.update(
        doctor_presence=0,
        patient_presence=0,
        open_sessions=0,
        duration_uncertain=False,
        lobby_visits=(),
        recordings=(),
        watched_hosts=(),
    )
    values.update(fields)
    return PresenceRecord(**values)


def test_calls_for_rooms_and_open_calls(clock: FrozenClock) -> None:
    ids = seed(clock, "a1", "a2", "a3")
    assert event_log.calls_for_rooms(["appointment_a1"]) == [ids["a1"]]
    assert sorted(event_log.calls_for_rooms(["appointment_a1", "appointment_a2", "x"])) == sorted(
        [ids["a1"], ids["a2"]]
    )
    assert event_log.calls_for_rooms(["x"]) == []
    assert event_log.open_tracked_calls() == []
    watched = {"a1": ("muc.a",), "a2": (), "a3": (event_log.EVERY_HOST,)}
    for name, hosts in watched.items():
        video_calls.save_presence(
            ids[name], presence(open_sessions=1, watched_hosts=hosts), clock.ms
        )
        video_calls.watch(ids[name], hosts, None)
    video_calls.transition_call(ids["a2"], [CallStatus.SCHEDULED], CallStatus.IN_PROGRESS, clock.ms)
    assert event_log.open_tracked_calls() == sorted(ids.values())
    assert len(event_log.open_tracked_calls(limit=1)) == 1
    # A call watched on every host ("*", as the migration marks open calls) is every host's.
    assert sorted(event_log.calls_watched_on("muc.a")) == sorted([ids["a1"], ids["a3"]])
    assert event_log.calls_watched_on("muc.b") == [ids["a3"]]
    video_calls.transition_call(ids["a1"], [CallStatus.SCHEDULED], CallStatus.CANCELLED, clock.ms)
    assert event_log.open_tracked_calls() == sorted([ids["a2"], ids["a3"]])


def session(name: str, joined: int | None, left: int | None = None) -> PresenceSession:
    return PresenceSession(
        session=name,
        user_id="doc",
        role=Role.DOCTOR,
        joined_at=joined,
        left_at=left,
        end_reason=EndReason.LEFT if left is not None else None,
        boot_id="boot-1",
        host="muc.meet.example.test",
        meeting_id="meeting-1",
        repaired=False,
        counted=joined is not None,
    )


def test_replace_sessions_rewrites_only_what_changed(clock: FrozenClock) -> None:
    call_id = seed(clock, "a1")["a1"]
    t = clock.ms
    event_log.replace_sessions(call_id, [session("s2", t + 200), session("s1", t + 100)], [])
    stored = event_log.sessions_of(call_id)
    assert [(s.session, s.joined_at, s.left_at) for s in stored] == [
        ("s1", t + 100, None),
        ("s2", t + 200, None),
    ]
    kept_id = stored[0].id
    event_log.replace_sessions(
        call_id,
        [session("s1", t + 100), session("s2", t + 200, t + 300), session("s3", None)],
        stored,
    )
    again = event_log.sessions_of(call_id)
    assert [(s.session, s.left_at, s.end_reason) for s in again] == [
        ("s1", None, None),
        ("s2", t + 300, "left"),
        ("s3", None, None),
    ]
    assert again[0].id == kept_id
    assert [(s.repaired, s.counted) for s in again] == [
        (False, True),
        (False, True),
        (False, False),
    ]
    event_log.replace_sessions(call_id, [session("s3", None)], again)
    assert [s.session for s in event_log.sessions_of(call_id)] == ["s3"]
    assert OccupantSession.select().count() == 1


def test_prune_snapshots_keeps_room_events_and_recent_snapshots(clock: FrozenClock) -> None:
    prosody = Prosody()
    cutoff = clock.ms - HOUR_MS
    old = [prosody.snapshot(cutoff - 3 + n, {ROOM: []}) for n in range(3)]
    recent = prosody.snapshot(cutoff, {ROOM: []})
    room_event = prosody.created(ROOM, cutoff - HOUR_MS)
    batch: list[Event] = [*old, recent, room_event]
    for event in batch:
        event_log.insert(event, "contract", clock.ms)
    assert event_log.prune_snapshots(cutoff, batch=2) == 2
    assert event_log.prune_snapshots(cutoff) == 1
    assert event_log.prune_snapshots(cutoff) == 0
    assert sorted(e.id for e in ProsodyEvent.select()) == sorted([recent.id, room_event.id])
    assert [r.event_id for r in SnapshotRoom.select()] == [recent.id]
