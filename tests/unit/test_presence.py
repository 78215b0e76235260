"""Example tests for service.domain.presence: every rule, and the tricky orders."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from service.domain.model import CallStatus, EndReason, Role
from service.domain.presence import (
    CallDerivation,
    LobbyVisit,
    Params,
    RecordingSpan,
    Waiting,
    derive_call,
)
from service.domain.prosody import (
    EventType,
    Occupant,
    ProsodyStarted,
    Recording,
    RoomEvent,
    Snapshot,
    SnapshotOccupant,
    SnapshotRoom,
)

ROOM = "appointment_a1"
HOST = "muc.meet.test"
DOC = "doctor-uid"
PAT = "patient-uid"
T0 = 1_800_000_000_000
S = 1000
MIN = 60 * S
GRACE = 120 * S
NO_SHOW_GRACE = 15 * MIN
MAX_CALL = 4 * 60 * MIN


def at(seconds: float) -> int:
    return T0 + int(seconds * S)


@dataclass
class Stream:
    """Builds a plausible event stream with unique ids and increasing seq."""

    boot: str = "boot1"
    events: list[RoomEvent] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    restarts: list[ProsodyStarted] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def _id(self) -> str:
        return f"evt_{next(self._ids):08d}-0000-4000-8000-000000000000"

    def _room(
        self,
        kind: EventType,
        t: float,
        meeting: str | None,
        occupant: Occupant | None = None,
        reason: str | None = None,
        recording: Recording | None = None,
    ) -> RoomEvent:
        event = RoomEvent(
            id=self._id(),
            type=kind,
            occurred_at=at(t),
            host=HOST,
            boot_id=self.boot,
            seq=len(self.events),
            room_name=ROOM,
            meeting_id=meeting,
            occupant=occupant,
            reason=reason,
            recording=recording,
        )
        self.events.append(event)
        return event

    def knocked(self, t: float, session: str, user: str | None) -> RoomEvent:
        return self._room(EventType.LOBBY_JOINED, t, "lobby1", Occupant(session, user))

    def knock_ended(self, t: float, session: str, user: str | None, reason: str) -> RoomEvent:
        return self._room(EventType.LOBBY_LEFT, t, "lobby1", Occupant(session, user), reason)

    def recorder(self, t: float, session: str, mode: str | None, started: bool) -> RoomEvent:
        kind = EventType.RECORDING_STARTED if started else EventType.RECORDING_STOPPED
        return self._room(kind, t, "m1", recording=Recording(session, mode))

    def created(self, t: float, meeting: str | None = "m1") -> RoomEvent:
        return self._room(EventType.ROOM_CREATED, t, meeting)

    def joined(
        self, t: float, session: str, user: str | None, meeting: str | None = "m1"
    ) -> RoomEvent:
        return self._room(EventType.OCCUPANT_JOINED, t, meeting, Occupant(session, user))

    def left(
        self,
        t: float,
        session: str,
        user: str | None,
        reason: str = "left",
        meeting: str | None = "m1",
    ) -> RoomEvent:
        return self._room(EventType.OCCUPANT_LEFT, t, meeting, Occupant(session, user), reason)

    def destroyed(self, t: float, meeting: str | None = "m1") -> RoomEvent:
        return self._room(EventType.ROOM_DESTROYED, t, meeting)

    def snapshot(
        self,
        t: float,
        present: dict[str, tuple[str | None, float]],
        meeting: str = "m1",
        host: str = HOST,
        interval_s: int | None = None,
        lobby: dict[str, tuple[str | None, float]] | None = None,
    ) -> Snapshot:
        occupants = tuple(
            SnapshotOccupant(session, user, at(joined))
            for session, (user, joined) in sorted(present.items())
        )
        knocking = tuple(
            SnapshotOccupant(session, user, at(joined))
            for session, (user, joined) in sorted((lobby or {}).items())
        )
        rooms = (SnapshotRoom(ROOM, meeting, occupants, knocking),) if present or lobby else ()
        snap = Snapshot(
            self._id(), at(t), host, self.boot, len(self.events), rooms, interval_s=interval_s
        )
        self.snapshots.append(snap)
        return snap

    def restart(self, t: float, boot: str) -> ProsodyStarted:
        self.boot = boot
        event = ProsodyStarted(self._id(), at(t), HOST, boot, 0)
        self.restarts.append(event)
        return event

    def derive(self, now: float, appointment_end: float | None = None) -> CallDerivation:
        return derive_call(
            self.events,
            self.snapshots,
            self.restarts,
            Params(
                room_name=ROOM,
                doctor_uid=DOC,
                patient_uid=PAT,
                appointment_end_ms=None if appointment_end is None else at(appointment_end),
                call_end_grace_ms=GRACE,
                no_show_grace_ms=NO_SHOW_GRACE,
                max_call_ms=MAX_CALL,
            ),
            now_ms=at(now),
        )


def consult() -> Stream:
    """Doctor waits 10 min, patient joins, 20 min together, both leave, room destroyed."""
    s = Stream()
    s.created(0)
    s.joined(0, "d1", DOC)
    s.joined(600, "p1", PAT)
    s.left(1800, "p1", PAT)
    s.left(1805, "d1", DOC)
    s.destroyed(1805.002)
    return s


def test_a_doctor_waiting_alone_is_not_billed() -> None:
    record = consult().derive(now=4000)
    assert record.status is CallStatus.COMPLETED
    assert record.doctor_joined_at == at(0)
    assert record.patient_joined_at == at(600)
    assert record.started_at == at(600)
    assert record.ended_at == at(1800)
    assert record.duration == 1200
    assert record.doctor_presence_s == 1805
    assert record.patient_presence_s == 1200
    assert record.completed_at == record.cutoff == at(1805.002)
    assert record.missing is None
    assert record.repairs == ()
    assert [s.end_reason for s in record.sessions] == [EndReason.LEFT, EndReason.LEFT]


def test_in_progress_while_together_with_open_intervals_running_to_now() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(60, "p1", PAT)
    record = s.derive(now=600)
    assert record.status is CallStatus.IN_PROGRESS
    assert record.started_at == at(60)
    assert record.ended_at is None and record.duration is None and record.cutoff is None
    assert record.doctor_presence_s == 600
    assert record.patient_presence_s == 540
    assert [x.left_at for x in record.sessions] == [None, None]


def test_scheduled_until_they_overlap() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    record = s.derive(now=300)
    assert record.status is CallStatus.SCHEDULED
    assert record.started_at is None
    assert record.doctor_joined_at == at(0)
    assert record.patient_joined_at is None
    assert record.doctor_presence_s == 300


def test_any_order_and_duplicates_give_the_same_record() -> None:
    s = consult()
    expected = s.derive(now=4000)
    rng = random.Random(4)
    for _ in range(20):
        events = s.events * 2
        rng.shuffle(events)
        shuffled = Stream(events=events)
        assert shuffled.derive(now=4000) == expected


def test_left_before_joined_is_kept_but_not_counted_until_the_join_arrives() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    join = s.joined(100, "p1", PAT)
    s.left(700, "p1", PAT)
    without_join = Stream(events=[e for e in s.events if e is not join])
    early = without_join.derive(now=800)
    assert early.status is CallStatus.SCHEDULED
    assert early.patient_joined_at is None and early.patient_presence_s == 0
    orphan = next(x for x in early.sessions if x.session == "p1")
    assert orphan.joined_at is None and orphan.left_at == at(700) and not orphan.counted
    full = s.derive(now=800)
    assert full.status is CallStatus.IN_PROGRESS
    assert full.patient_presence_s == 600


def test_room_destroyed_before_the_last_left_completes_at_the_destroy() -> None:
    # Prosody can run the empty-room destroy inside the last occupant's left hook.
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(60, "p1", PAT)
    s.left(600, "p1", PAT)
    s.destroyed(900)
    s.left(900.004, "d1", DOC)
    record = s.derive(now=901)
    assert record.status is CallStatus.COMPLETED
    assert record.completed_at == at(900)
    assert record.ended_at == at(600) and record.duration == 540
    doctor = next(x for x in record.sessions if x.session == "d1")
    # The real left is kept on the session; totals stop at the cutoff.
    assert doctor.left_at == at(900.004) and doctor.end_reason is EndReason.LEFT
    assert record.doctor_presence_s == 900
    assert record.repairs == ()


def test_room_destroyed_with_both_inside_completes_and_closes_their_sessions() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(60, "p1", PAT)
    s.destroyed(600)
    record = s.derive(now=601)
    assert record.status is CallStatus.COMPLETED
    assert record.ended_at == at(600) and record.duration == 540
    assert {(r.session, r.reason, r.at) for r in record.repairs} == {
        ("d1", EndReason.ROOM_DESTROYED, at(600)),
        ("p1", EndReason.ROOM_DESTROYED, at(600)),
    }
    # Their lefts arrive after all: the real lefts win, the record does not move.
    s.left(600.001, "d1", DOC, reason="room_destroyed")
    s.left(600.001, "p1", PAT, reason="room_destroyed")
    later = s.derive(now=700)
    assert later.repairs == ()
    assert later.duration == 540 and later.completed_at == at(600)
    assert {x.end_reason for x in later.sessions} == {EndReason.ROOM_DESTROYED}


def test_a_late_left_of_an_old_session_after_a_reconnect() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(10, "p1", PAT)
    s.joined(300, "p2", PAT)  # the patient's second connection, before the first timed out
    s.left(330, "p1", PAT)  # the old session's left arrives late, after the rejoin
    record = s.derive(now=600)
    assert record.status is CallStatus.IN_PROGRESS
    assert record.patient_presence_s == 590
    assert record.patient_joined_at == at(10)


def test_reconnect_inside_the_grace_continues_the_call() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(60, "p1", PAT)
    s.left(600, "p1", PAT)
    s.left(600, "d1", DOC)
    s.joined(660, "d2", DOC)
    s.joined(700, "p2", PAT)
    s.left(1000, "p2", PAT)
    s.left(1000, "d2", DOC)
    record = s.derive(now=2000)
    assert record.status is CallStatus.COMPLETED
    assert record.started_at == at(60)
    assert record.ended_at == at(1000)
    assert record.duration == 540 + 300
    assert record.completed_at == at(1000) + GRACE
    assert record.doctor_presence_s == 600 + 340


def test_completion_waits_for_the_grace_and_ignores_later_sessions() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(60, "p1", PAT)
    s.left(600, "p1", PAT)
    s.left(610, "d1", DOC)
    assert s.derive(now=610 + 119).status is CallStatus.IN_PROGRESS
    done = s.derive(now=610 + 120)
    assert done.status is CallStatus.COMPLETED
    assert done.completed_at == at(730)
    # Coming back after the grace starts nothing new: the record stays as it was.
    s.joined(900, "d2", DOC)
    s.joined(900, "p2", PAT)
    later = s.derive(now=5000)
    assert (later.status, later.duration, later.ended_at) == (CallStatus.COMPLETED, 540, at(600))
    assert later.doctor_presence_s == done.doctor_presence_s
    assert [x.counted for x in later.sessions] == [True, True, False, False]


def test_someone_else_in_the_room_keeps_the_call_open() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(60, "p1", PAT)
    s.joined(100, "i1", "interpreter")
    s.left(600, "p1", PAT)
    s.left(600, "d1", DOC)
    assert s.derive(now=2000).status is CallStatus.IN_PROGRESS
    s.left(1000, "i1", "interpreter")
    record = s.derive(now=2000)
    assert record.status is CallStatus.COMPLETED
    assert record.completed_at == at(1000) + GRACE
    assert record.ended_at == at(600)


def test_two_devices_are_not_counted_twice() -> None:
    s = Stream()
    s.joined(0, "d-laptop", DOC)
    s.joined(30, "d-phone", DOC)
    s.joined(60, "p1", PAT)
    s.left(400, "d-laptop", DOC)
    s.left(600, "p1", PAT)
    s.left(600, "d-phone", DOC)
    s.destroyed(600.5)
    record = s.derive(now=700)
    assert record.doctor_presence_s == 600
    assert record.duration == 540
    assert record.doctor_joined_at == at(0)


def test_room_destroyed_before_they_overlap_leaves_the_call_open() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.left(300, "d1", DOC)
    s.destroyed(300.001)
    assert s.derive(now=400, appointment_end=1800).status is CallStatus.SCHEDULED
    s.joined(500, "d2", DOC, meeting="m2")
    s.joined(520, "p1", PAT, meeting="m2")
    record = s.derive(now=600, appointment_end=1800)
    assert record.status is CallStatus.IN_PROGRESS
    assert record.started_at == at(520)
    assert record.doctor_joined_at == at(0)


def test_no_show_records_who_never_came() -> None:
    end = 1800
    deadline = end + NO_SHOW_GRACE / S
    s = Stream()
    s.joined(0, "d1", DOC)
    s.left(1200, "d1", DOC)
    assert s.derive(now=deadline - 1, appointment_end=end).status is CallStatus.SCHEDULED
    record = s.derive(now=deadline, appointment_end=end)
    assert (record.status, record.missing) == (CallStatus.NO_SHOW, "patient")
    assert record.cutoff == at(deadline) and record.completed_at is None
    assert record.doctor_presence_s == 1200

    nobody = Stream().derive(now=deadline, appointment_end=end)
    assert (nobody.status, nobody.missing) == (CallStatus.NO_SHOW, "both")

    only_patient = Stream()
    only_patient.joined(100, "p1", PAT)
    only_patient.left(1000, "p1", PAT)
    assert only_patient.derive(now=deadline, appointment_end=end).missing == "doctor"

    apart = Stream()
    apart.joined(0, "d1", DOC)
    apart.left(100, "d1", DOC)
    apart.joined(100, "p1", PAT)  # touching is not overlapping
    apart.left(200, "p1", PAT)
    assert apart.derive(now=deadline, appointment_end=end).missing == "none"


def test_meeting_only_after_the_no_show_deadline_stays_a_no_show() -> None:
    end = 1800
    deadline = end + NO_SHOW_GRACE / S
    s = Stream()
    s.joined(0, "d1", DOC)
    s.left(1500, "d1", DOC)
    s.joined(deadline + 10, "p1", PAT)
    s.joined(deadline + 20, "d2", DOC)
    record = s.derive(now=deadline + 100, appointment_end=end)
    assert (record.status, record.missing) == (CallStatus.NO_SHOW, "patient")
    assert record.doctor_presence_s == 1500
    assert record.cutoff == at(deadline)
    # The doctor gave up at 1500 s, having waited since the start.
    assert (record.doctor_wait_s, record.patient_wait_s) == (1500, None)


# --- the waiting room --------------------------------------------------------------------------


def test_who_is_waiting_and_since_when() -> None:
    s = Stream()
    assert s.derive(now=10).waiting is None
    s.joined(100, "p1", PAT)
    record = s.derive(now=200)
    assert record.waiting == Waiting(Role.PATIENT, at(100))
    assert (record.patient_wait_s, record.doctor_wait_s) == (None, None)
    # A reload: the wait runs from the first presence.
    s.left(300, "p1", PAT)
    assert s.derive(now=310).waiting is None
    s.joined(320, "p2", PAT)
    assert s.derive(now=400).waiting == Waiting(Role.PATIENT, at(100))
    s.joined(700, "d1", DOC)
    started = s.derive(now=800)
    assert started.status is CallStatus.IN_PROGRESS and started.waiting is None
    # The patient waited from 100 to the start at 700; the doctor entered to a waiting patient.
    assert (started.patient_wait_s, started.doctor_wait_s) == (600, 0)


def test_a_doctor_alone_in_the_room_is_waiting() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(5, "x1", "interpreter")
    assert s.derive(now=60).waiting == Waiting(Role.DOCTOR, at(0))


def test_a_patient_there_from_the_start_waits_for_a_doctor_40_minutes_late() -> None:
    end = 1800
    s = Stream()
    s.joined(0, "p1", PAT)
    late = end + 40 * 60
    # Past the original deadline (end + 15 min) the patient is still waiting.
    waiting = s.derive(now=late - 1, appointment_end=end)
    assert waiting.status is CallStatus.SCHEDULED
    assert waiting.waiting == Waiting(Role.PATIENT, at(0))
    s.joined(late, "d1", DOC)
    s.left(late + 600, "d1", DOC)
    s.left(late + 600, "p1", PAT)
    record = s.derive(now=late + 600 + GRACE / S, appointment_end=end)
    assert record.status is CallStatus.COMPLETED
    assert (record.started_at, record.duration) == (at(late), 600)
    assert (record.patient_wait_s, record.doctor_wait_s) == (late, 0)


def test_a_patient_who_gives_up_after_the_deadline_is_a_no_show_of_the_doctor() -> None:
    end = 1800
    deadline = end + NO_SHOW_GRACE / S
    s = Stream()
    s.joined(600, "p1", PAT)
    s.left(deadline + 300, "p1", PAT)
    # Within the grace after leaving, a return continues the wait.
    assert s.derive(now=deadline + 300 + 60, appointment_end=end).status is CallStatus.SCHEDULED
    record = s.derive(now=deadline + 300 + GRACE / S, appointment_end=end)
    assert (record.status, record.missing) == (CallStatus.NO_SHOW, "doctor")
    assert record.cutoff == at(deadline + 300 + GRACE / S)
    assert (record.patient_wait_s, record.doctor_wait_s) == (deadline + 300 - 600, None)
    assert record.waiting is None


def test_a_return_within_the_grace_continues_the_wait() -> None:
    end = 1800
    deadline = end + NO_SHOW_GRACE / S
    s = Stream()
    s.joined(0, "p1", PAT)
    s.left(deadline + 10, "p1", PAT)
    s.joined(deadline + 10 + GRACE / S - 1, "p2", PAT)
    s.joined(deadline + 900, "d1", DOC)
    record = s.derive(now=deadline + 1000, appointment_end=end)
    assert record.status is CallStatus.IN_PROGRESS


def test_the_moved_deadline_is_bounded_by_max_call_duration() -> None:
    end = 1800
    deadline = end + NO_SHOW_GRACE / S
    s = Stream()
    s.joined(0, "p1", PAT)
    bound = deadline + MAX_CALL / S
    for t in range(1800, int(bound) + 1800, 1800):
        s.snapshot(t, {"p1": (PAT, 0)})
    assert s.derive(now=bound - 1, appointment_end=end).status is CallStatus.SCHEDULED
    record = s.derive(now=bound, appointment_end=end)
    assert (record.status, record.missing, record.cutoff) == (
        CallStatus.NO_SHOW,
        "doctor",
        at(bound),
    )
    assert record.patient_wait_s == bound


def test_a_call_that_started_in_time_is_never_a_no_show() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(10, "p1", PAT)
    record = s.derive(now=5000, appointment_end=1800)
    assert record.status is CallStatus.IN_PROGRESS


def test_snapshot_closes_a_session_whose_left_was_lost() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(10, "p1", PAT)
    s.snapshot(60, {"d1": (DOC, 0), "p1": (PAT, 10)})
    # p1 leaves at ~100 but its left is lost; the next snapshot no longer lists it.
    s.snapshot(120, {"d1": (DOC, 0)})
    s.snapshot(180, {"d1": (DOC, 0)})
    record = s.derive(now=200)
    patient = next(x for x in record.sessions if x.session == "p1")
    assert (patient.left_at, patient.end_reason, patient.repaired) == (
        at(120),
        EndReason.SNAPSHOT_REPAIR,
        True,
    )
    assert [(r.session, r.reason, r.at) for r in record.repairs] == [
        ("p1", EndReason.SNAPSHOT_REPAIR, at(120))
    ]
    # The real left, when it arrives, wins over the repair.
    s.left(100, "p1", PAT)
    fixed = s.derive(now=200)
    assert fixed.repairs == ()
    assert next(x for x in fixed.sessions if x.session == "p1").left_at == at(100)


def test_snapshot_supplies_a_lost_join() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.snapshot(60, {"d1": (DOC, 0), "p1": (PAT, 30)})
    record = s.derive(now=100)
    assert record.status is CallStatus.IN_PROGRESS
    assert record.started_at == at(30)
    patient = next(x for x in record.sessions if x.session == "p1")
    assert (patient.user_id, patient.role, patient.joined_at) == (PAT, Role.PATIENT, at(30))


def test_snapshot_of_another_host_repairs_nothing() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.snapshot(60, {}, host="other.muc")
    assert s.derive(now=100).repairs == ()


def test_prosody_restart_closes_sessions_of_the_earlier_boot() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(10, "p1", PAT)
    s.snapshot(60, {"d1": (DOC, 0), "p1": (PAT, 10)})
    s.restart(100, "boot2")
    s.joined(150, "d2", DOC)
    record = s.derive(now=200)
    closed = {r.session: (r.reason, r.at, r.latest) for r in record.repairs}
    # Closed just after the last moment known present (the snapshot), not at the restart.
    assert closed == {
        "d1": (EndReason.PROSODY_RESTART, at(60) + 1, at(100)),
        "p1": (EndReason.PROSODY_RESTART, at(60) + 1, at(100)),
    }
    assert next(x for x in record.sessions if x.session == "d2").left_at is None
    assert record.status is CallStatus.IN_PROGRESS  # d2 rejoined inside the grace
    assert s.derive(now=60 + 121).status is CallStatus.IN_PROGRESS  # d2 is still there
    # The same restart without the doctor's return completes after the grace.
    alone = Stream()
    alone.joined(0, "d1", DOC)
    alone.joined(10, "p1", PAT)
    alone.snapshot(60, {"d1": (DOC, 0), "p1": (PAT, 10)})
    alone.restart(100, "boot2")
    finished = alone.derive(now=300)
    assert (finished.status, finished.ended_at, finished.duration) == (
        CallStatus.COMPLETED,
        at(60) + 1,
        50,
    )
    assert finished.duration_uncertain
    assert [x.left_at_latest for x in finished.sessions] == [at(100), at(100)]


def outage(interval_s: int | None) -> Stream:
    """The issue's scenario: both join at t0, snapshots at 60 s and 120 s list them, then
    Prosody dies; `interval_s` is what the snapshots announce (None: an older module)."""
    s = Stream()
    s.created(0)
    s.joined(0, "d1", DOC)
    s.joined(0, "p1", PAT)
    for t in (0, 60, 120):
        s.snapshot(t, {"d1": (DOC, 0), "p1": (PAT, 0)}, interval_s=interval_s)
    return s


def test_an_hour_long_outage_is_not_billed() -> None:
    s = outage(None)
    # Without an announced interval nothing tells the service the host is gone until the
    # restart (or MAX_CALL_DURATION).
    assert s.derive(now=3000).status is CallStatus.IN_PROGRESS
    s.restart(3600, "boot2")
    record = s.derive(now=3601)
    assert record.status is CallStatus.COMPLETED
    assert record.duration is not None and 119 <= record.duration <= 181
    assert {(r.reason, r.at, r.latest) for r in record.repairs} == {
        (EndReason.PROSODY_RESTART, at(120) + 1, at(3600))
    }
    assert record.duration_uncertain


def test_a_silent_host_completes_its_calls_then_the_restart_changes_nothing() -> None:
    s = outage(60)
    # Two intervals unheard: still in progress, nothing repaired.
    early = s.derive(now=120 + 179)
    assert (early.status, early.repairs) == (CallStatus.IN_PROGRESS, ())
    # Three intervals unheard: silent; the sessions end at the last moment known present.
    silent = s.derive(now=120 + 180)
    assert {(r.reason, r.at, r.latest) for r in silent.repairs} == {
        (EndReason.HOST_SILENT, at(120) + 1, None)
    }
    assert silent.status is CallStatus.COMPLETED  # the grace ran out at 240 s already
    assert (silent.duration, silent.completed_at) == (120, at(240) + 1)
    assert silent.duration_uncertain
    # The restart an hour later gives the same record, now with a bound.
    s.restart(3600, "boot2")
    later = s.derive(now=3601)
    assert (later.status, later.duration, later.ended_at) == (
        CallStatus.COMPLETED,
        120,
        silent.ended_at,
    )
    assert {(r.reason, r.at, r.latest) for r in later.repairs} == {
        (EndReason.HOST_SILENT, at(120) + 1, at(3600))
    }


def test_a_quick_restart_is_a_restart_not_silence() -> None:
    s = outage(60)
    s.restart(150, "boot2")
    record = s.derive(now=400)
    assert {(r.reason, r.at, r.latest) for r in record.repairs} == {
        (EndReason.PROSODY_RESTART, at(120) + 1, at(150))
    }
    assert record.duration == 120


def test_the_same_boot_speaking_again_undoes_the_silence() -> None:
    s = outage(60)
    assert s.derive(now=400).repairs != ()
    # Delivery was only late: the same boot's snapshots list both again.
    for t in (180, 240, 300, 360):
        s.snapshot(t, {"d1": (DOC, 0), "p1": (PAT, 0)}, interval_s=60)
    record = s.derive(now=400)
    assert (record.status, record.repairs) == (CallStatus.IN_PROGRESS, ())
    assert all(x.left_at is None for x in record.sessions)
    assert not record.duration_uncertain


def test_a_gap_before_the_omitting_snapshot_is_silence() -> None:
    s = outage(60)
    # The same boot comes back after 10 min without them: when they left is unknown.
    s.snapshot(720, {}, interval_s=60)
    record = s.derive(now=1000)
    assert {(r.reason, r.at, r.latest) for r in record.repairs} == {
        (EndReason.HOST_SILENT, at(120) + 1, at(720))
    }
    assert record.duration == 120
    # Without the gap the omitting snapshot closes them at its own time, as before.
    s2 = outage(60)
    s2.snapshot(180, {}, interval_s=60)
    punctual = s2.derive(now=1000)
    assert {(r.reason, r.at, r.latest) for r in punctual.repairs} == {
        (EndReason.SNAPSHOT_REPAIR, at(180), at(180))
    }
    assert punctual.duration == 180
    assert punctual.duration_uncertain


def test_silence_of_another_host_repairs_nothing() -> None:
    s = outage(60)
    for t in range(180, 1200, 60):
        s.snapshot(t, {"d1": (DOC, 0), "p1": (PAT, 0)}, interval_s=60)
    s.snapshot(60, {}, host="other.muc", interval_s=10)
    record = s.derive(now=1200)
    assert (record.status, record.repairs) == (CallStatus.IN_PROGRESS, ())


def test_a_repair_outside_the_overlap_leaves_the_duration_certain() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(10, "p1", PAT)
    s.left(300, "p1", PAT)
    s.joined(20, "x1", "interpreter")  # its end is repaired, but it is not doctor or patient
    s.snapshot(200, {"d1": (DOC, 0), "p1": (PAT, 10)})
    s.left(320, "d1", DOC)
    record = s.derive(now=600)
    assert record.status is CallStatus.COMPLETED
    assert [r.session for r in record.repairs] == ["x1"]
    assert not record.duration_uncertain
    assert not consult().derive(now=2000).duration_uncertain


def test_sweeper_closes_a_stale_session_just_after_its_last_known_presence() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(10, "p1", PAT)
    s.left(600, "p1", PAT)
    hours = MAX_CALL / S
    assert s.derive(now=600 + hours).repairs == ()
    record = s.derive(now=600 + hours + 1)
    # The patient's left at 600 was reported while the doctor was still in the room.
    assert [(r.session, r.reason, r.at) for r in record.repairs] == [
        ("d1", EndReason.SWEEPER, at(600) + 1)
    ]
    assert record.status is CallStatus.COMPLETED
    assert (record.ended_at, record.duration) == (at(600), 590)


def test_sweeper_uses_snapshots_listing_the_session() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(10, "p1", PAT)
    s.snapshot(900, {"d1": (DOC, 0), "p1": (PAT, 10)})
    hours = MAX_CALL / S
    record = s.derive(now=900 + hours + 1)
    assert {(r.session, r.at) for r in record.repairs} == {("d1", at(900) + 1), ("p1", at(900) + 1)}
    assert (record.status, record.ended_at, record.duration) == (
        CallStatus.COMPLETED,
        at(900) + 1,
        890,
    )


def test_sweeper_never_undoes_a_call_that_started() -> None:
    # Both lefts lost, no snapshots: all we know is that both were there when the patient
    # joined. The call stays started (and completes) rather than becoming a no-show.
    s = Stream()
    s.joined(0, "d1", DOC)
    s.joined(10, "p1", PAT)
    assert s.derive(now=20).status is CallStatus.IN_PROGRESS
    record = s.derive(now=10 + MAX_CALL / S + 1, appointment_end=1800)
    assert record.status is CallStatus.COMPLETED
    assert (record.started_at, record.duration) == (at(10), 0)


def test_roles_come_from_user_id_only() -> None:
    s = Stream()
    s.joined(0, "x1", None)
    s.joined(5, "x2", "someone-else")
    s.joined(10, "d1", DOC)
    roles = {x.session: x.role for x in s.derive(now=20).sessions}
    assert roles == {"x1": Role.OTHER, "x2": Role.OTHER, "d1": Role.DOCTOR}


def test_end_reasons_from_the_contract_and_unknown_values() -> None:
    s = Stream()
    s.joined(0, "a", "u1")
    s.joined(0, "b", "u2")
    s.joined(0, "c", "u3")
    s.left(10, "a", "u1", reason="kicked")
    s.left(10, "b", "u2", reason="teleported")
    s.left(10, "c", "u3", reason="snapshot_repair")  # a repair word is not the sender's to use
    reasons = {x.session: x.end_reason for x in s.derive(now=20).sessions}
    assert reasons == {"a": EndReason.KICKED, "b": EndReason.UNKNOWN, "c": EndReason.UNKNOWN}


def test_events_of_other_rooms_are_ignored() -> None:
    s = consult()
    stray = RoomEvent(
        "evt_x",
        EventType.OCCUPANT_JOINED,
        at(0),
        HOST,
        "boot1",
        99,
        "appointment_zz",
        "m9",
        Occupant("z", PAT),
    )
    assert Stream(events=[*s.events, stray]).derive(now=4000) == s.derive(now=4000)


def test_event_sync_stream_without_meeting_ids() -> None:
    # event_sync has whole seconds and no meeting id: a destroy closes earlier sessions only.
    s = Stream()
    s.joined(0, "d1", DOC, meeting=None)
    s.joined(60, "p1", PAT, meeting=None)
    s.left(600, "p1", PAT, meeting=None)
    s.destroyed(600, meeting=None)
    s.joined(600, "d2", DOC, meeting=None)  # same second: treated as the room's next life
    record = s.derive(now=700)
    assert record.status is CallStatus.COMPLETED
    assert record.completed_at == at(600)
    closed = {r.session: r.reason for r in record.repairs}
    assert closed == {"d1": EndReason.ROOM_DESTROYED}
    assert next(x for x in record.sessions if x.session == "d2").counted is False


def test_breakout_destroy_does_not_close_the_main_room() -> None:
    s = Stream()
    s.joined(0, "d1", DOC, meeting=None)
    s.joined(10, "p1", PAT, meeting=None)
    s.joined(100, "d1b", DOC, meeting="breakout_x")
    s.left(200, "d1b", DOC, meeting="breakout_x")
    s.destroyed(200, meeting="breakout_x")
    record = s.derive(now=300)
    assert record.status is CallStatus.IN_PROGRESS
    assert record.repairs == ()


def test_grace_boundary_a_rejoin_just_inside_continues_just_outside_does_not() -> None:
    def call(rejoin_after_ms: int) -> CallDerivation:
        s = Stream()
        s.joined(0, "d1", DOC)
        s.joined(10, "p1", PAT)
        s.left(600, "d1", DOC)
        s.left(600, "p1", PAT)
        s.joined(600 + rejoin_after_ms / S, "d2", DOC)
        s.joined(600 + rejoin_after_ms / S, "p2", PAT)
        s.left(1000, "d2", DOC)
        s.left(1000, "p2", PAT)
        return s.derive(now=5000)

    inside = call(GRACE - 1)
    assert (inside.ended_at, inside.completed_at) == (at(1000), at(1000) + GRACE)
    outside = call(GRACE)
    assert (outside.ended_at, outside.completed_at) == (at(600), at(600) + GRACE)
    assert outside.duration == 590


def test_a_boot_without_snapshots_is_never_silent() -> None:
    s = outage(60)
    s.restart(150, "boot2")  # the new boot runs with snapshots off
    s.joined(160, "d2", DOC, meeting="m2")
    s.joined(170, "p2", PAT, meeting="m2")
    record = s.derive(now=5000)
    assert {r.session for r in record.repairs} == {"d1", "p1"}
    assert [x.left_at for x in record.sessions if x.session in ("d2", "p2")] == [None, None]
    assert record.status is CallStatus.IN_PROGRESS


# --- Jitsi's lobby and recordings ---------------------------------------------------------------


def test_a_knock_is_presence_and_an_admitted_patient_waited_from_the_knock() -> None:
    s = Stream()
    s.joined(0, "d1", DOC)
    assert s.derive(now=10).waiting == Waiting(Role.DOCTOR, at(0))
    s.knocked(100, "k1", PAT)
    # Knocking while the doctor is in the room: the patient waits for admission.
    knocking = s.derive(now=150)
    assert knocking.waiting == Waiting(Role.PATIENT, at(100))
    assert knocking.lobby == (LobbyVisit("k1", Role.PATIENT, at(100), None, None, False),)
    s.knock_ended(160, "k1", PAT, "admitted")
    s.joined(161, "p1", PAT)
    s.left(761, "p1", PAT)
    s.left(770, "d1", DOC)
    record = s.derive(now=770 + GRACE / S)
    assert record.status is CallStatus.COMPLETED
    assert (record.started_at, record.duration) == (at(161), 600)
    assert (record.patient_wait_s, record.doctor_wait_s) == (61, 161)
    # The knock is listed, never counted as time in the room.
    assert record.patient_presence_s == 600
    assert record.lobby[0].reason is EndReason.ADMITTED and record.lobby[0].left_at == at(160)


def test_a_denied_knock_is_recorded_as_such() -> None:
    s = Stream()
    s.knocked(0, "k1", PAT)
    assert s.derive(now=30).waiting == Waiting(Role.PATIENT, at(0))
    s.knock_ended(60, "k1", PAT, "denied")
    s.knocked(70, "k2", "stranger")
    s.knock_ended(80, "k2", "stranger", "no-such-reason")
    record = s.derive(now=120)
    assert record.waiting is None and record.status is CallStatus.SCHEDULED
    assert [(v.role, v.reason) for v in record.lobby] == [
        (Role.PATIENT, EndReason.DENIED),
        (Role.OTHER, EndReason.UNKNOWN),
    ]


def test_a_patient_knocking_past_the_deadline_moves_it() -> None:
    end = 1800
    deadline = end + NO_SHOW_GRACE / S
    s = Stream()
    s.knocked(600, "k1", PAT)
    assert s.derive(now=deadline + 60, appointment_end=end).status is CallStatus.SCHEDULED
    s.knock_ended(deadline + 120, "k1", PAT, "left")
    record = s.derive(now=deadline + 120 + GRACE / S, appointment_end=end)
    assert (record.status, record.missing) == (CallStatus.NO_SHOW, "doctor")
    assert record.patient_wait_s == deadline + 120 - 600


def test_a_knock_whose_left_was_lost_is_closed_by_a_restart() -> None:
    s = Stream()
    s.knocked(0, "k1", PAT)
    s.restart(500, "boot2")
    (visit,) = s.derive(now=600).lobby
    assert (visit.left_at, visit.reason, visit.repaired) == (
        at(0) + 1,
        EndReason.PROSODY_RESTART,
        True,
    )


def test_recordings_are_listed_from_start_to_stop() -> None:
    s = Stream()
    s.created(0)
    s.joined(0, "d1", DOC)
    s.joined(1, "p1", PAT)
    s.recorder(10, "rec1", "file", started=True)
    assert s.derive(now=20).recordings == (RecordingSpan("rec1", at(10), None, "file"),)
    s.recorder(100, "rec1", "file", started=False)
    s.recorder(200, "rec2", None, started=True)
    s.recorder(210, "rec2", "stream", started=False)
    # A lost stop: the meeting's destruction ends it.
    s.recorder(300, "rec3", "file", started=True)
    s.left(400, "p1", PAT)
    s.left(400, "d1", DOC)
    s.destroyed(401)
    assert s.derive(now=500).recordings == (
        RecordingSpan("rec1", at(10), at(100), "file"),
        RecordingSpan("rec2", at(200), at(210), "stream"),
        RecordingSpan("rec3", at(300), at(401), "file"),
    )


def test_the_lobby_hosts_snapshots_keep_a_knock_open_and_close_a_lost_one() -> None:
    s = Stream()
    s.knocked(0, "k1", PAT)
    s.snapshot(60, {}, meeting="lobby1", lobby={"k1": (PAT, 0)})
    assert s.derive(now=90).waiting == Waiting(Role.PATIENT, at(0))
    # k1's lobby.left was lost: the next snapshot of the host no longer lists it.
    s.snapshot(120, {}, meeting="lobby1", lobby={})
    (visit,) = s.derive(now=130).lobby
    assert (visit.left_at, visit.reason, visit.repaired) == (
        at(120),
        EndReason.SNAPSHOT_REPAIR,
        True,
    )
    # A knock known only from a listing (its lobby.joined lost) counts from its listed join.
    s.snapshot(180, {}, meeting="lobby1", lobby={"k2": (PAT, 150)})
    assert [v.joined_at for v in s.derive(now=190).lobby] == [at(0), at(150)]
