"""service.store.operations: the operators' queries (a day, a range, Prosody's health,
repairs) and the sweeper's own record."""

from __future__ import annotations

import pytest

from service.domain.model import CallStatus
from service.domain.prosody import Event
from service.store import audit_log, clinic, event_log, operations, video_calls
from service.store.models import OccupantSession
from tests.clock import HOUR_MS, FrozenClock, shift_days
from tests.store.support import appointment_row, call_for, user_row
from tests.usecases.support import ROOM, Prosody

pytestmark = pytest.mark.usefixtures("conn")


def seed(clock: FrozenClock) -> dict[str, str]:
    """Today: a1 (10:00, doc), a2 (09:00, doc), a3 (09:00, other); tomorrow: a4 (doc)."""
    today, tomorrow = clock.day(), clock.day(days=1)
    clinic.upsert_users([user_row(uid, clock.ms) for uid in ("doc", "pat", "other")])
    clinic.upsert_appointments(
        [
            appointment_row("a1", clock.ms, today),
            appointment_row("a2", clock.ms, today, start_time="09:00"),
            appointment_row("a3", clock.ms, today, start_time="09:00", doctor_uid="other"),
            appointment_row("a4", clock.ms, tomorrow),
            appointment_row("a5", clock.ms, today, start_time="11:00"),
        ]
    )
    ids = {i: call_for(i, clock.ms).id for i in ("a1", "a2", "a3", "a4")}
    video_calls.transition_call(ids["a2"], [CallStatus.SCHEDULED], CallStatus.IN_PROGRESS, clock.ms)
    return ids


def test_calls_by_status_of_a_day(clock: FrozenClock) -> None:
    seed(clock)
    counts = operations.calls_by_status(clock.day())
    assert counts == {
        "SCHEDULED": 2,
        "IN_PROGRESS": 1,
        "COMPLETED": 0,
        "CANCELLED": 0,
        "FAILED": 0,
        "NO_SHOW": 0,
    }
    assert set(operations.calls_by_status(clock.day(days=-1)).values()) == {0}


def test_day_appointments_in_start_order_with_their_calls(clock: FrozenClock) -> None:
    ids = seed(clock)
    day = operations.day_appointments(clock.day(), None)
    assert [(a.id, c.id if c else None) for a, c in day] == [
        ("a2", ids["a2"]),
        ("a3", ids["a3"]),
        ("a1", ids["a1"]),
        ("a5", None),
    ]
    doctors = operations.day_appointments(clock.day(), "other")
    assert [a.id for a, _ in doctors] == ["a3"]
    assert operations.doctors_on(clock.day()) == ["doc", "other"]
    assert operations.doctors_on(clock.day(days=1)) == ["doc"]
    assert operations.doctors_on(clock.day(days=-1)) == []


def test_calls_between(clock: FrozenClock) -> None:
    ids = seed(clock)
    today, tomorrow = clock.day(), clock.day(days=1)
    found = operations.calls_between(today, tomorrow, None)
    assert sorted((d, c.id) for d, c in found) == sorted(
        [(today, ids["a1"]), (today, ids["a2"]), (today, ids["a3"]), (tomorrow, ids["a4"])]
    )
    only = operations.calls_between(tomorrow, shift_days(tomorrow, 5), "doc")
    assert [(d, c.id) for d, c in only] == [(tomorrow, ids["a4"])]
    assert operations.calls_between(today, today, "pat") == []


def test_open_sessions_and_sessions_of(clock: FrozenClock) -> None:
    ids = seed(clock)
    t = clock.ms
    rows = [
        (ids["a1"], "open", t + 10, None),
        (ids["a1"], "closed", t + 5, t + 20),
        (ids["a1"], "never-joined", None, t + 30),
        (ids["a2"], "other-call", t + 15, None),
    ]
    for call_id, session, joined, left in rows:
        OccupantSession.insert(
            call_id=call_id, session=session, role="doctor", joined_at=joined, left_at=left
        ).execute()
    found = operations.open_sessions([ids["a1"], ids["a2"]])
    assert sorted(s.session for s in found) == ["open", "other-call"]
    assert operations.open_sessions([]) == []
    assert [s.session for s in event_log.sessions_of(ids["a1"])] == [
        "closed",
        "open",
        "never-joined",
    ]


def test_host_health_counts_events_gaps_and_restarts(clock: FrozenClock) -> None:
    t = clock.ms - HOUR_MS
    prosody = Prosody()
    other = Prosody(host="b.example.test", boot="boot-b")
    stream: list[Event] = [
        prosody.created(ROOM, t + 1_000),
        prosody.joined(ROOM, "s1", "doc", t + 2_000),
    ]
    prosody.seq += 2
    stream.append(prosody.left(ROOM, "s1", "doc", t + 3_000))
    restarted = Prosody(boot="boot-2")
    stream.append(restarted.started(t + 4_000))
    stream.append(restarted.snapshot(t + 5_000))
    stream.append(other.created(ROOM, t + 500))
    unnumbered = Prosody(host="c.example.test")
    sync = unnumbered.created(ROOM, t + 100)
    for event in stream:
        event_log.insert(event, "contract", clock.ms)
    event_log.insert(sync, "event_sync", clock.ms)
    health = {h.host: h for h in operations.host_health(t)}
    assert sorted(health) == ["b.example.test", "c.example.test", prosody.host]
    main = health[prosody.host]
    assert (main.last_event_at, main.last_event_type, main.boot_id, main.last_seq) == (
        t + 5_000,
        "rooms.snapshot",
        "boot-2",
        2,
    )
    assert (main.events, main.seq_gaps, main.restarts) == (5, 2, 1)
    assert (health["b.example.test"].events, health["b.example.test"].seq_gaps) == (1, 0)
    windowed = {h.host: h for h in operations.host_health(t + 2_500)}[prosody.host]
    assert (windowed.events, windowed.seq_gaps, windowed.restarts, windowed.last_event_at) == (
        3,
        0,
        1,
        t + 5_000,
    )
    assert operations.host_health(t + 10_000)[0].events == 0


def test_repairs_since_counts_per_reason(clock: FrozenClock) -> None:
    t = clock.ms
    audit_log.audit("sweeper", "presence.repaired", t + 10, detail={"reason": "sweeper"})
    audit_log.audit("prosody", "presence.repaired", t + 20, detail={"reason": "prosody_restart"})
    audit_log.audit("prosody", "presence.repaired", t + 30, detail={"reason": "prosody_restart"})
    audit_log.audit("prosody", "presence.repaired", t + 40)
    audit_log.audit("prosody", "event.received", t + 50, detail={"reason": "sweeper"})
    assert operations.repairs_since(t) == {"sweeper": 1, "prosody_restart": 2, "unknown": 1}
    assert operations.repairs_since(t + 25) == {"prosody_restart": 1, "unknown": 1}
    assert operations.repairs_since(t + 41) == {}


def test_record_sweep_keeps_one_row(clock: FrozenClock) -> None:
    assert operations.last_sweep() is None
    operations.record_sweep(clock.ms, 3, 1)
    operations.record_sweep(clock.ms + 60_000, 0, 2)
    last = operations.last_sweep()
    assert last is not None
    assert (last.name, last.ran_at, last.derived, last.no_shows) == (
        "sweeper",
        clock.ms + 60_000,
        0,
        2,
    )
