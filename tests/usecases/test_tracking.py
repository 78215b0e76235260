"""service.tracking as Python functions: ingesting Prosody's events (typed values), the
sweeper, and the hosts' view."""

from __future__ import annotations

import os

import psycopg2
import pytest

from service import calls, sweeper, tracking
from service.config import Settings
from service.domain.model import Action
from service.domain.prosody import EventType
from service.domain.sessions import silent_from
from service.store import operations
from service.store.models import Appointment, OccupantSession, ProsodyEvent, SnapshotRoom, VideoCall
from tests.clock import DAY_MS, HOUR_MS, FrozenClock, appointment_around
from tests.usecases.support import ROOM, Prosody, appointment, audits, read

pytestmark = pytest.mark.usefixtures("seeded")


def stored_call(call_id: str) -> VideoCall:
    return read(lambda: VideoCall.get_by_id(call_id))


def consultation(settings: Settings, prosody: Prosody, t0: int) -> None:
    """Doctor waits 60 s, patient joins, they talk 10 min, patient leaves, doctor leaves."""
    for event in (
        prosody.created(ROOM, t0),
        prosody.joined(ROOM, "s-doc", "doc", t0 + 1_000),
        prosody.joined(ROOM, "s-pat", "pat", t0 + 61_000),
        prosody.left(ROOM, "s-pat", "pat", t0 + 661_000),
        prosody.left(ROOM, "s-doc", "doc", t0 + 671_000),
        prosody.destroyed(ROOM, t0 + 671_500),
    ):
        assert tracking.ingest(settings, event, "contract") == tracking.Ingested(True, 1)


def test_a_consultation_completes_the_call_and_its_appointment(
    settings: Settings, clock: FrozenClock
) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    t0 = clock.ms - 700_000
    consultation(settings, Prosody(), t0)
    call = stored_call(grant.call.id)
    assert call.status == "COMPLETED"
    assert call.tracked_by_server is True
    assert (call.doctor_joined_at, call.patient_joined_at) == (t0 + 1_000, t0 + 61_000)
    assert (call.started_at, call.ended_at, call.duration) == (t0 + 61_000, t0 + 661_000, 600)
    assert (call.doctor_presence, call.patient_presence) == (670, 600)
    assert call.open_sessions == 0
    assert call.patient_wait == 0
    assert call.doctor_wait == 60
    assert read(lambda: Appointment.get_by_id("appt1").status) == "COMPLETED"
    transitions = [(a[0], a[3]) for a in audits("call.transition")]
    assert transitions == [
        ("prosody", {"from": "SCHEDULED", "to": "IN_PROGRESS", "cause": "server_event"}),
        ("prosody", {"from": "IN_PROGRESS", "to": "COMPLETED", "cause": "server_event"}),
    ]
    received = audits("event.received")
    assert len(received) == 6
    assert received[1][1] == grant.call.id
    assert received[1][3]["type"] == "occupant.joined"
    assert received[1][3]["source"] == "contract"
    sessions = read(
        lambda: [
            (s.session, s.role, s.joined_at, s.left_at, s.end_reason)
            for s in OccupantSession.select().order_by(OccupantSession.session)
        ]
    )
    assert sessions == [
        ("s-doc", "doctor", t0 + 1_000, t0 + 671_000, "left"),
        ("s-pat", "patient", t0 + 61_000, t0 + 661_000, "left"),
    ]


def test_a_duplicate_event_is_stored_once(settings: Settings, clock: FrozenClock) -> None:
    calls.initiate(settings, "doc", "appt1")
    event = Prosody().joined(ROOM, "s-doc", "doc", clock.ms)
    assert tracking.ingest(settings, event, "contract") == tracking.Ingested(new=True, calls=1)
    assert tracking.ingest(settings, event, "contract") == tracking.Ingested(new=False, calls=0)
    assert read(lambda: ProsodyEvent.select().count()) == 1
    assert len(audits("event.received")) == 1


def test_an_event_for_a_room_without_a_call_is_kept(settings: Settings, clock: FrozenClock) -> None:
    event = Prosody().joined("appointment_elsewhere", "s1", "doc", clock.ms)
    assert tracking.ingest(settings, event, "event_sync") == tracking.Ingested(True, 0)
    assert audits("event.received") == [
        (
            "prosody",
            None,
            None,
            {"id": event.id, "type": "occupant.joined", "source": "event_sync", "verified": True},
        )
    ]
    assert read(lambda: ProsodyEvent.get_by_id(event.id).room_name) == "appointment_elsewhere"


def test_a_sequence_gap_is_audited(settings: Settings, clock: FrozenClock) -> None:
    prosody = Prosody()
    tracking.ingest(settings, prosody.created(ROOM, clock.ms), "contract")
    prosody.seq += 3
    late = prosody.joined(ROOM, "s-doc", "doc", clock.ms + 1)
    tracking.ingest(settings, late, "contract")
    assert audits("event.seq_gap") == [("prosody", None, None, {"boot_id": "boot-1", "seq": 5})]


def test_recordings_are_audited_on_the_call(settings: Settings, clock: FrozenClock) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    prosody = Prosody()
    start = prosody.recording(EventType.RECORDING_STARTED, ROOM, "rec-1", clock.ms - 5_000)
    stop = prosody.recording(EventType.RECORDING_STOPPED, ROOM, "rec-1", clock.ms - 1_000)
    tracking.ingest(settings, start, "contract")
    tracking.ingest(settings, stop, "contract")
    assert audits("recording.started") == [
        (
            "prosody",
            grant.call.id,
            None,
            {"session": "rec-1", "mode": "file", "at": start.occurred_at},
        )
    ]
    assert audits("recording.stopped")[0][3]["at"] == stop.occurred_at
    assert '"session":"rec-1"' in stored_call(grant.call.id).recordings


def test_a_restart_closes_open_sessions(settings: Settings, clock: FrozenClock) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    prosody = Prosody()
    tracking.ingest(settings, prosody.joined(ROOM, "s-doc", "doc", clock.ms - 10_000), "contract")
    assert stored_call(grant.call.id).open_sessions == 1
    restarted = Prosody(boot="boot-2")
    result = tracking.ingest(settings, restarted.started(clock.ms - 1_000), "contract")
    assert result == tracking.Ingested(True, 1)
    session = read(lambda: OccupantSession.get(OccupantSession.session == "s-doc"))
    assert session.end_reason == "prosody_restart"
    assert session.left_at is not None and session.left_at <= clock.ms - 1_000
    assert stored_call(grant.call.id).open_sessions == 0


@pytest.mark.presence_from_clients
def test_sweep_marks_an_untracked_call_no_show(settings: Settings, clock: FrozenClock) -> None:
    window = appointment_around(clock.ms, before_ms=HOUR_MS, after_ms=0)
    appointment(clock, "appt2", **window)
    grant = calls.initiate(settings, "doc", "appt2")
    calls.report_status("doc", "appt2", Action.JOIN)
    ends_at = read(lambda: Appointment.get_by_id("appt2").ends_at)
    early = sweeper.sweep(settings, ends_at + settings.no_show_grace * 1000 - 1)
    assert early == sweeper.SweepResult(ran=True, derived=0, no_shows=0, pruned=0)
    assert stored_call(grant.call.id).status == "SCHEDULED"
    at = ends_at + settings.no_show_grace * 1000
    assert sweeper.sweep(settings, at) == sweeper.SweepResult(True, 0, 1, 0)
    call = stored_call(grant.call.id)
    assert (call.status, call.missing, call.updated_at) == ("NO_SHOW", "patient", at)
    assert read(lambda: Appointment.get_by_id("appt2").status) == "NO_SHOW"
    assert audits("call.transition")[-1] == (
        "sweeper",
        grant.call.id,
        "appt2",
        {"from": "SCHEDULED", "to": "NO_SHOW", "cause": "sweeper", "missing": "patient"},
    )
    assert read(lambda: Appointment.get_by_id("appt1").status) == "CONFIRMED"
    last = read(operations.last_sweep)
    assert last is not None
    assert (last.ran_at, last.derived, last.no_shows) == (at, 0, 1)


@pytest.mark.presence_from_clients
def test_sweep_leaves_calls_of_unconfirmed_appointments_alone(
    settings: Settings, clock: FrozenClock
) -> None:
    window = appointment_around(clock.ms, before_ms=HOUR_MS, after_ms=0)
    appointment(clock, "appt2", **window)
    grant = calls.initiate(settings, "pat", "appt2")
    appointment(clock, "appt2", **window, status="PENDING")
    result = sweeper.sweep(settings, clock.ms + DAY_MS)
    assert result.no_shows == 0
    assert stored_call(grant.call.id).status == "SCHEDULED"


def test_sweep_derives_tracked_calls_and_completes_after_the_grace(
    settings: Settings, clock: FrozenClock
) -> None:
    grant = calls.initiate(settings, "doc", "appt1")
    prosody = Prosody()
    t0 = clock.ms - 311_000
    for event in (
        prosody.joined(ROOM, "s-doc", "doc", t0),
        prosody.joined(ROOM, "s-pat", "pat", t0 + 1_000),
        prosody.left(ROOM, "s-pat", "pat", t0 + 301_000),
        prosody.left(ROOM, "s-doc", "doc", t0 + 311_000),
    ):
        tracking.ingest(settings, event, "contract")
    assert stored_call(grant.call.id).status == "IN_PROGRESS"
    grace = settings.call_end_grace * 1000
    assert sweeper.sweep(settings, t0 + 311_000 + grace - 1).derived == 1
    assert stored_call(grant.call.id).status == "IN_PROGRESS"
    assert sweeper.sweep(settings, t0 + 311_000 + grace).derived == 1
    call = stored_call(grant.call.id)
    assert (call.status, call.started_at, call.ended_at, call.duration) == (
        "COMPLETED",
        t0 + 1_000,
        t0 + 301_000,
        300,
    )
    assert audits("call.transition")[-1][0] == "sweeper"
    assert sweeper.sweep(settings, t0 + DAY_MS).derived == 0


def test_sweep_prunes_old_snapshots(settings: Settings, clock: FrozenClock) -> None:
    prosody = Prosody()
    old = prosody.snapshot(clock.ms - sweeper.SNAPSHOT_RETENTION_MS - 1, {ROOM: []})
    recent = prosody.snapshot(clock.ms - sweeper.SNAPSHOT_RETENTION_MS, {ROOM: []})
    tracking.ingest(settings, old, "contract")
    tracking.ingest(settings, recent, "contract")
    assert sweeper.sweep(settings).pruned == 1
    assert read(lambda: [e.id for e in ProsodyEvent.select()]) == [recent.id]
    assert read(lambda: [r.event_id for r in SnapshotRoom.select()]) == [recent.id]


def test_sweep_takes_turns_on_postgresql(settings: Settings, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        assert sweeper.sweep(settings).ran is True
        return
    other = psycopg2.connect(os.environ["TEST_DATABASE_URL"])
    other.autocommit = True
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (sweeper.SWEEPER_LOCK_KEY,))
            assert sweeper.sweep(settings) == sweeper.SweepResult(False, 0, 0, 0)
            assert read(operations.last_sweep) is None
            cursor.execute("SELECT pg_advisory_unlock(%s)", (sweeper.SWEEPER_LOCK_KEY,))
        assert sweeper.sweep(settings).ran is True
        assert read(operations.last_sweep) is not None
    finally:
        other.close()


def test_silent_hosts_and_their_return(settings: Settings, clock: FrozenClock) -> None:
    prosody = Prosody()
    heard = clock.ms - 1_000
    tracking.ingest(settings, prosody.snapshot(heard, interval_s=60), "contract")
    [(row, silent)] = tracking.prosody_hosts()
    assert (row.host, row.boot_id, row.last_heard, row.interval_s) == (
        prosody.host,
        "boot-1",
        heard,
        60,
    )
    assert silent is False
    silent_at = silent_from(heard, 60_000)
    sweeper.sweep(settings, silent_at - 1)
    assert audits("prosody_host.silent") == []
    sweeper.sweep(settings, silent_at)
    sweeper.sweep(settings, silent_at + 1)
    assert audits("prosody_host.silent") == [
        (
            "sweeper",
            None,
            None,
            {"host": prosody.host, "boot_id": "boot-1", "last_heard": heard, "interval_s": 60},
        )
    ]
    clock.set(silent_at)
    assert tracking.prosody_hosts()[0][1] is True
    back = prosody.snapshot(silent_at + 5_000, interval_s=60)
    tracking.ingest(settings, back, "contract")
    assert audits("prosody_host.back") == [
        (
            "prosody",
            None,
            None,
            {
                "host": prosody.host,
                "boot_id": "boot-1",
                "last_heard": heard,
                "heard": silent_at + 5_000,
            },
        )
    ]
    assert tracking.prosody_hosts()[0][1] is False
