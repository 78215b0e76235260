"""service.store.clinic, video_calls and audit_log (once repo.py), and the call lists' pages, on
SQLite and PostgreSQL."""

from __future__ import annotations

import json

import peewee
import pytest

from service.domain import rules
from service.domain.model import AppointmentStatus, CallStatus, EndReason, Missing, Role
from service.domain.presence import LobbyVisit, RecordingSpan
from service.domain.record import PresenceRecord
from service.store import audit_log, call_lists, clinic, uow, video_calls
from service.store.models import (
    Appointment,
    AuditEvent,
    OccupantSession,
    ProsodyEvent,
    SnapshotRoom,
    User,
    VideoCall,
)
from tests.clock import HOUR_MS, FrozenClock
from tests.store.support import appointment, appointment_row, call_for, reset_for_tests, user_row

pytestmark = pytest.mark.usefixtures("conn")


def seed(clock: FrozenClock, *appointment_ids: str) -> None:
    clinic.upsert_users([user_row(uid, clock.ms) for uid in ("doc", "pat", "other")])
    clinic.upsert_appointments([appointment_row(i, clock.ms, clock.day()) for i in appointment_ids])


def fresh(call_id: str) -> VideoCall:
    return VideoCall.get_by_id(call_id)


def test_users_lookups(clock: FrozenClock) -> None:
    seed(clock)
    assert clinic.get_users([]) == {}
    assert sorted(clinic.get_users(["doc"])) == ["doc"]
    assert sorted(clinic.get_users(["doc", "pat", "nobody"])) == ["doc", "pat"]
    assert sorted(clinic.get_users(["doc", "pat"])) == ["doc", "pat"]
    assert clinic.get_users(["doc", "doc"])["doc"].first_name == "Doc"
    assert clinic.known_uids(["pat", "ghost", "doc"]) == {"doc", "pat"}
    assert clinic.known_uids(f"u{n}" for n in range(1200)) == set()


def test_upsert_users_keeps_created_at(clock: FrozenClock) -> None:
    clinic.upsert_users([user_row("doc", clock.ms)])
    later = clock.advance(1_000)
    clinic.upsert_users([user_row("doc", later, first_name="New", is_active=False)])
    clinic.upsert_users([])
    row = User.get_by_id("doc")
    assert (row.first_name, row.is_active, row.created_at, row.updated_at) == (
        "New",
        False,
        clock.ms - 1_000,
        later,
    )


def test_upsert_appointments_moves_the_calls_parties(clock: FrozenClock) -> None:
    seed(clock, "a1", "a2")
    call = call_for("a1", clock.ms)
    untouched = call_for("a2", clock.ms)
    later = clock.advance(1_000)
    clinic.upsert_appointments(
        [
            appointment_row("a1", later, clock.day(), patient_uid="other", status="PENDING"),
            appointment_row("a2", later, clock.day()),
        ]
    )
    moved = fresh(call.id)
    assert (moved.patient_uid, moved.updated_at) == ("other", later)
    assert fresh(untouched.id).updated_at == clock.ms - 1_000
    stored = appointment("a1")
    assert (stored.status, stored.patient_uid, stored.created_at) == (
        "PENDING",
        "other",
        clock.ms - 1_000,
    )
    assert sorted(clinic.get_appointments(["a1", "a2", "a9"])) == ["a1", "a2"]
    assert clinic.get_appointments([]) == {}
    assert clinic.get_appointment("a9") is None


def test_set_appointment_status_only_from_the_given_statuses(clock: FrozenClock) -> None:
    seed(clock, "a1")
    done = AppointmentStatus.COMPLETED
    at = clock.advance(5_000)
    assert not clinic.set_appointment_status("a1", done, [AppointmentStatus.PENDING], at)
    assert appointment("a1").status == "CONFIRMED"
    assert clinic.set_appointment_status("a1", done, [AppointmentStatus.CONFIRMED], at)
    assert (appointment("a1").status, appointment("a1").updated_at) == ("COMPLETED", at)
    assert not clinic.set_appointment_status("nope", done, list(AppointmentStatus), at)


def test_create_call_if_missing_is_idempotent(clock: FrozenClock) -> None:
    seed(clock, "a1")
    call, created = video_calls.create_call_if_missing(appointment("a1"), "room-a1", clock.ms)
    assert created
    assert (call.status, call.room_name, call.doctor_uid, call.patient_uid) == (
        "SCHEDULED",
        "room-a1",
        "doc",
        "pat",
    )
    again, created_again = video_calls.create_call_if_missing(
        appointment("a1"), "room-a1", clock.ms + 1
    )
    assert (again.id, again.created_at, created_again) == (call.id, clock.ms, False)
    assert video_calls.get_call(call.id) is not None
    assert video_calls.get_call("vc_missing") is None
    by_appointment = video_calls.get_call_by_appointment("a1")
    assert by_appointment is not None and by_appointment.id == call.id
    assert video_calls.get_call_by_appointment("a2") is None


def test_find_call_prefers_the_appointment_id(clock: FrozenClock) -> None:
    seed(clock, "a1")
    call = call_for("a1", clock.ms)
    clinic.upsert_appointments([appointment_row(call.id, clock.ms, clock.day())])
    other = call_for(call.id, clock.ms)
    by_call_id = video_calls.find_call(call.id)
    assert by_call_id is not None and by_call_id.id == other.id
    by_appointment = video_calls.find_call("a1")
    assert by_appointment is not None and by_appointment.id == call.id
    assert video_calls.find_call("nothing") is None


def test_lock_call(clock: FrozenClock) -> None:
    seed(clock, "a1")
    call = call_for("a1", clock.ms)
    with uow.write():
        assert video_calls.lock_call(call.id).id == call.id
    with pytest.raises(peewee.DoesNotExist), uow.write():
        video_calls.lock_call("vc_missing")


def test_transition_call_is_conditional(clock: FrozenClock) -> None:
    seed(clock, "a1")
    call = call_for("a1", clock.ms)
    at = clock.advance(7_000)
    assert not video_calls.transition_call(
        call.id, [CallStatus.IN_PROGRESS], CallStatus.COMPLETED, at
    )
    assert fresh(call.id).status == "SCHEDULED"
    assert video_calls.transition_call(
        call.id, [CallStatus.SCHEDULED], CallStatus.NO_SHOW, at, missing="both"
    )
    row = fresh(call.id)
    assert (row.status, row.updated_at, row.missing) == ("NO_SHOW", at, "both")


def test_first_joins_and_the_start(clock: FrozenClock) -> None:
    seed(clock, "a1")
    call = call_for("a1", clock.ms)
    t = clock.ms
    open_ = [CallStatus.SCHEDULED, CallStatus.IN_PROGRESS]
    assert video_calls.record_first_join(call.id, "doctor_joined_at", t + 100, open_)
    assert video_calls.record_first_join(call.id, "doctor_joined_at", t + 200, open_)
    assert fresh(call.id).doctor_joined_at == t + 100
    assert not video_calls.start_if_both_joined(call.id, t + 250)
    assert video_calls.record_first_join(call.id, "patient_joined_at", t + 300, open_)
    assert video_calls.start_if_both_joined(call.id, t + 300)
    assert not video_calls.start_if_both_joined(call.id, t + 400)
    row = fresh(call.id)
    assert (row.status, row.started_at, row.patient_joined_at) == ("IN_PROGRESS", t + 300, t + 300)
    assert not video_calls.record_first_join(
        call.id, "patient_joined_at", t + 500, [CallStatus.SCHEDULED]
    )


@pytest.mark.parametrize(
    ("started", "ended", "ended_at", "duration"),
    [
        (1_000, 61_499, 61_499, 60),
        (1_000, 61_500, 61_500, 61),
        (5_000, 4_000, 5_000, 0),
    ],
)
def test_end_call_computes_the_duration(
    clock: FrozenClock, started: int, ended: int, ended_at: int, duration: int
) -> None:
    """Times are offsets from now; an end before the start is clamped to the start."""
    seed(clock, "a1")
    call = call_for("a1", clock.ms)
    t = clock.ms
    video_calls.transition_call(
        call.id, [CallStatus.SCHEDULED], CallStatus.IN_PROGRESS, t, started_at=t + started
    )
    end = rules.client_end(fresh(call.id).started_at, t + ended)
    assert video_calls.end_call(call.id, [CallStatus.IN_PROGRESS], t + ended, *end)
    row = fresh(call.id)
    assert (row.status, row.ended_at, row.duration) == ("COMPLETED", t + ended_at, duration)
    assert not video_calls.end_call(call.id, [CallStatus.IN_PROGRESS], t + ended + 1, *end)


def test_end_call_without_a_start_lasts_nothing(clock: FrozenClock) -> None:
    seed(clock, "a1")
    call = call_for("a1", clock.ms)
    at = clock.advance(9_000)
    assert video_calls.end_call(call.id, [CallStatus.SCHEDULED], at, *rules.client_end(None, at))
    row = fresh(call.id)
    assert (row.ended_at, row.duration, row.started_at) == (at, 0, None)


def test_scheduled_calls_ended_before(clock: FrozenClock) -> None:
    seed(clock)
    day = clock.day()
    ended = clock.ms - HOUR_MS
    clinic.upsert_appointments(
        [
            appointment_row("due", clock.ms, day, ends_at=ended),
            appointment_row("later", clock.ms, day, ends_at=ended + 1_001),
            appointment_row("cancelled", clock.ms, day, ends_at=ended, status="CANCELLED"),
            appointment_row("going", clock.ms, day, ends_at=ended, status="IN_PROGRESS"),
            appointment_row("tracked", clock.ms, day, ends_at=ended),
            appointment_row("started", clock.ms, day, ends_at=ended),
        ]
    )
    ids = {
        i: call_for(i, clock.ms).id
        for i in ("due", "later", "cancelled", "going", "tracked", "started")
    }
    VideoCall.update(tracked_by_server=True).where(VideoCall.id == ids["tracked"]).execute()
    video_calls.transition_call(
        ids["started"], [CallStatus.SCHEDULED], CallStatus.IN_PROGRESS, clock.ms
    )
    found = [c.id for c in video_calls.scheduled_calls_ended_before(ended + 1_000)]
    assert found == sorted([ids["due"], ids["going"]])
    assert len(video_calls.scheduled_calls_ended_before(ended + 1_000, limit=1)) == 1
    assert video_calls.scheduled_calls_ended_before(ended - 1) == []
    assert len(video_calls.scheduled_calls_ended_before(ended + 1_001)) == 3


def test_save_presence_writes_every_field(clock: FrozenClock) -> None:
    seed(clock, "a1")
    call = call_for("a1", clock.ms)
    t = clock.ms
    record = PresenceRecord(
        doctor_joined_at=t + 10,
        patient_joined_at=t + 20,
        started_at=t + 20,
        ended_at=t + 80_000,
        duration=80,
        doctor_presence=81,
        patient_presence=80,
        missing=Missing.NONE,
        open_sessions=1,
        duration_uncertain=True,
        waiting_role=Role.DOCTOR,
        waiting_since=t + 10,
        doctor_wait=0,
        patient_wait=0,
        watched_hosts=("lobby.meet.test", "muc.meet.test"),
        lobby_visits=(LobbyVisit("k", Role.PATIENT, t + 5, t + 20, EndReason.ADMITTED, False),),
        recordings=(RecordingSpan("r", t + 30, None, "file"),),
    )
    video_calls.save_presence(call.id, record, t + 90_000)
    row = fresh(call.id)
    assert row.tracked_by_server is True
    assert row.updated_at == t + 90_000
    assert (row.missing, row.waiting_role) == ("none", "doctor")
    for name in ("doctor_joined_at", "started_at", "ended_at", "duration", "open_sessions"):
        assert getattr(row, name) == getattr(record, name)
    assert row.duration_uncertain is True
    assert row.watched_hosts == "lobby.meet.test muc.meet.test"
    assert json.loads(row.lobby_visits) == [
        {
            "role": "patient",
            "joined_at": t + 5,
            "left_at": t + 20,
            "reason": "admitted",
            "repaired": False,
        }
    ]
    assert json.loads(row.recordings) == [
        {"session": "r", "started_at": t + 30, "ended_at": None, "mode": "file"}
    ]
    assert row.status == "SCHEDULED"


def test_lists_page_newest_first(clock: FrozenClock) -> None:
    seed(clock)
    day = clock.day()
    clinic.upsert_appointments(
        [
            appointment_row("a1", clock.ms, day),
            appointment_row("a2", clock.ms, day, patient_uid="other"),
            appointment_row("a3", clock.ms, day, doctor_uid="other"),
            appointment_row("a4", clock.ms, day),
        ]
    )
    ids = [call_for(a, clock.ms + n * 1_000).id for n, a in enumerate(["a1", "a2", "a3"])]
    same_time = call_for("a4", clock.ms + 2_000).id
    newest_pair = sorted([ids[2], same_time], reverse=True)
    assert [c[0].id for c in call_lists.by_status(None, None, 10)] == [
        *newest_pair,
        ids[1],
        ids[0],
    ]
    first = call_lists.by_status(None, None, 1)[0][0]
    cursor = call_lists.Cursor(first.created_at, first.id)
    assert [c[0].id for c in call_lists.by_status(None, cursor, 1)] == [newest_pair[1]]
    assert [c[0].id for c in call_lists.for_user("pat", None, None, 10)] == [
        *newest_pair,
        ids[0],
    ]
    assert [c[0].id for c in call_lists.for_user("doc", None, None, 2)] == [same_time, ids[1]]
    video_calls.transition_call(ids[0], [CallStatus.SCHEDULED], CallStatus.CANCELLED, clock.ms)
    cancelled = call_lists.for_user("pat", CallStatus.CANCELLED, None, 10)
    assert [c[0].id for c in cancelled] == [ids[0]]
    after = call_lists.Cursor(clock.ms + 1_000, ids[1])
    assert [c[0].id for c in call_lists.for_user("doc", None, after, 10)] == [ids[0]]
    assert call_lists.by_status(CallStatus.FAILED, None, 10) == []


def test_doctor_stats(clock: FrozenClock) -> None:
    seed(clock)
    yesterday, today = clock.day(days=-1), clock.day()
    clinic.upsert_appointments(
        [
            appointment_row("old", clock.ms, yesterday),
            appointment_row("new", clock.ms, today),
            appointment_row("open", clock.ms, today),
            appointment_row("theirs", clock.ms, today, doctor_uid="other"),
        ]
    )
    for appointment_id, duration, wait in (("old", 60, 10), ("new", 121, None), ("theirs", 5, 5)):
        call = call_for(appointment_id, clock.ms)
        video_calls.transition_call(
            call.id,
            [CallStatus.SCHEDULED],
            CallStatus.COMPLETED,
            clock.ms,
            duration=duration,
            patient_wait=wait,
        )
    call_for("open", clock.ms)
    counts, totals = video_calls.doctor_stats("doc", None, None)
    assert counts == {"COMPLETED": 2, "SCHEDULED": 1}
    assert totals == (2, 181, 90.5, 10.0)
    counts, totals = video_calls.doctor_stats("doc", today, None)
    assert (counts, totals) == ({"COMPLETED": 1, "SCHEDULED": 1}, (1, 121, 121.0, None))
    counts, totals = video_calls.doctor_stats("doc", None, yesterday)
    assert (counts, totals) == ({"COMPLETED": 1}, (1, 60, 60.0, 10.0))
    assert video_calls.doctor_stats("nobody", None, None) == ({}, (0, 0, None, None))


def test_audit_and_its_trail(clock: FrozenClock) -> None:
    t = clock.ms
    audit_log.audit("doc", "token.issued", t, "vc_1", "a1", {"role": "doctor", "b": 1})
    audit_log.audit("sweeper", "call.transition", t + 1, "vc_1")
    audit_log.audit("admin", "user.upserted", t + 2, detail={"uid": "doc"})
    trail = audit_log.audit_trail("vc_1")
    assert [(e.at, e.actor, e.action, e.appointment_id, e.detail) for e in trail] == [
        (t, "doc", "token.issued", "a1", '{"b":1,"role":"doctor"}'),
        (t + 1, "sweeper", "call.transition", None, "{}"),
    ]
    assert audit_log.audit_trail("vc_2") == []
    assert AuditEvent.select().count() == 3


def test_forget_calls_removes_calls_sessions_and_events(clock: FrozenClock) -> None:
    seed(clock, "a1", "a2")
    forgotten = call_for("a1", clock.ms)
    kept = call_for("a2", clock.ms)
    for call in (forgotten, kept):
        OccupantSession.insert(call_id=call.id, session="s", role="doctor").execute()
        ProsodyEvent.insert(
            id=f"evt-{call.id}",
            type="room.created",
            source="contract",
            host="h",
            occurred_at=clock.ms,
            room_name=call.room_name,
            data="{}",
            received_at=clock.ms,
        ).execute()
        SnapshotRoom.insert(
            event_id="snap", occurred_at=clock.ms, room_name=call.room_name, occupants="[]"
        ).execute()
    audit_log.audit("doc", "call.created", clock.ms, forgotten.id, "a1")
    assert video_calls.forget_calls(["a1", "a9"], [forgotten.room_name]) == 1
    assert [c.id for c in VideoCall.select()] == [kept.id]
    assert [s.call_id for s in OccupantSession.select()] == [kept.id]
    assert [e.room_name for e in ProsodyEvent.select()] == [kept.room_name]
    assert [r.room_name for r in SnapshotRoom.select()] == [kept.room_name]
    assert len(audit_log.audit_trail(forgotten.id)) == 1
    assert video_calls.forget_calls(["a9"], []) == 0
    assert Appointment.select().count() == 2


def test_reset_for_tests_empties_every_table(clock: FrozenClock) -> None:
    seed(clock, "a1")
    call_for("a1", clock.ms + HOUR_MS)
    audit_log.audit("x", "y", clock.ms)
    reset_for_tests()
    assert (User.select().count(), Appointment.select().count(), VideoCall.select().count()) == (
        0,
        0,
        0,
    )
    assert AuditEvent.select().count() == 0
