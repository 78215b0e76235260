"""Ingest through the store: an in-order join or left is applied from the call's summary,
anything else derives in full, and the stored record is the full derivation's either way."""

from __future__ import annotations

from typing import Any

import pytest

from service import calls, tracking
from service.config import Settings
from service.domain.incremental import Counts
from service.domain.presence import derive_call
from service.domain.prosody import ProsodyStarted, RoomEvent, Snapshot
from service.store import event_log as event_store
from service.store import summaries
from service.store.models import DerivationState, OccupantSession, VideoCall
from tests.clock import FrozenClock
from tests.usecases.support import HOST, Prosody, appointment, derived_from, read, write

pytestmark = pytest.mark.usefixtures("seeded")


class Consultation:
    def __init__(self, settings: Settings, clock: FrozenClock) -> None:
        self.settings = settings
        self.clock = clock
        self.prosody = Prosody()
        self.sent: list[RoomEvent | Snapshot | ProsodyStarted] = []
        appointment(clock, "flap")
        grant = calls.initiate(settings, "doc", "flap")
        self.room = grant.call.room_name
        self.call_id = grant.call.id

    def start(self, t0: int) -> None:
        """The room created, then doctor and patient joined a second apart: in progress."""
        self.send(self.prosody.created(self.room, t0))
        self.send(self.prosody.joined(self.room, "doc-1", "doc", t0 + 1_000))
        self.send(self.prosody.joined(self.room, "pat-1", "pat", t0 + 2_000))

    def send(self, event: RoomEvent | Snapshot | ProsodyStarted) -> None:
        self.sent.append(event)
        tracking.ingest(self.settings, event, "contract")

    def expected(self) -> tuple[Any, ...]:
        derived = derived_from(self.settings, self.clock.ms, self.call_id, self.sent)
        sessions = sorted(
            (s.session, s.joined_at, s.left_at, s.end_reason.value if s.end_reason else None)
            for s in derived.sessions
        )
        return (
            derived.status.value,
            derived.started_at,
            derived.doctor_presence_s,
            derived.patient_presence_s,
            derived.open_sessions,
            sessions,
        )

    def stored(self) -> tuple[Any, ...]:
        def load() -> tuple[Any, ...]:
            call = VideoCall.get_by_id(self.call_id)
            sessions = sorted(
                (s.session, s.joined_at, s.left_at, s.end_reason)
                for s in OccupantSession.select().where(OccupantSession.call_id == self.call_id)
            )
            return (
                call.status,
                call.started_at,
                call.doctor_presence,
                call.patient_presence,
                call.open_sessions,
                sessions,
            )

        return read(load)


@pytest.fixture
def full_derivations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the calls of the full derivation made by ingest."""
    made: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return derive_call(*args, **kwargs)

    monkeypatch.setattr("service.tracking.derive_call", counted)
    return made


def test_a_flapping_patient_is_applied_in_steps(
    settings: Settings, clock: FrozenClock, full_derivations: list[int]
) -> None:
    c = Consultation(settings, clock)
    t0 = clock.advance(0)
    c.send(c.prosody.created(c.room, t0))
    c.send(c.prosody.joined(c.room, "doc-1", "doc", t0 + 1_000))
    clock.advance(2_000)
    c.send(c.prosody.joined(c.room, "pat-0", "pat", clock.ms))
    clock.advance(1_000)
    # The call is in progress now: this derives in full and writes the summary.
    c.send(c.prosody.left(c.room, "pat-0", "pat", clock.ms))
    clock.advance(1_500)
    c.send(c.prosody.joined(c.room, "pat-1", "pat", clock.ms))
    before = len(full_derivations)
    for n in range(2, 32):
        clock.advance(20_000)
        c.send(c.prosody.left(c.room, f"pat-{n - 1}", "pat", clock.ms))
        clock.advance(1_500)
        c.send(c.prosody.joined(c.room, f"pat-{n}", "pat", clock.ms))
        clock.advance(10)
        if n % 5 == 0:
            # The minute's snapshot confirms who is there.
            listed: list[tuple[str, str | None, int]] = [
                ("doc-1", "doc", t0 + 1_000),
                (f"pat-{n}", "pat", clock.ms - 10),
            ]
            c.send(c.prosody.snapshot(clock.ms, {c.room: listed}, interval_s=60))
            clock.advance(10)
        assert c.stored() == c.expected()
    # 60 joins and lefts and 6 snapshots, all in order while the call is in progress: none
    # derives in full.
    assert len(full_derivations) == before
    assert read(lambda: DerivationState.get_or_none(DerivationState.call_id == c.call_id))
    # A snapshot that omits the patient repairs the session: that derives in full.
    clock.advance(1_000)
    only_doctor: list[tuple[str, str | None, int]] = [("doc-1", "doc", t0 + 1_000)]
    c.send(c.prosody.snapshot(clock.ms, {c.room: only_doctor}, interval_s=60))
    assert len(full_derivations) == before + 1
    assert c.stored() == c.expected()
    repaired = {row[0]: row[2:] for row in c.stored()[-1]}["pat-31"]
    assert repaired == (clock.ms, "snapshot_repair")
    # A call with a repaired session has no summary: its next events derive in full.
    assert not read(lambda: DerivationState.get_or_none(DerivationState.call_id == c.call_id))


def test_anything_else_derives_in_full_and_agrees(
    settings: Settings, clock: FrozenClock, full_derivations: list[int]
) -> None:
    c = Consultation(settings, clock)
    t0 = clock.advance(0)
    c.start(t0)
    clock.advance(60_000)
    c.send(c.prosody.joined(c.room, "other-1", None, clock.ms - 100))
    assert c.stored() == c.expected()
    steps_from = len(full_derivations)
    # Older than the latest event: derives in full.
    c.send(c.prosody.left(c.room, "other-1", None, clock.ms - 50_000))
    assert len(full_derivations) == steps_from + 1
    assert c.stored() == c.expected()
    # A summary that cannot be read (another version, a damaged row) only costs a full one.
    write(
        lambda: (
            DerivationState.update(state="{not json")
            .where(DerivationState.call_id == c.call_id)
            .execute()
        )
    )
    clock.advance(5_000)
    c.send(c.prosody.joined(c.room, "pat-2", "pat", clock.ms))
    assert len(full_derivations) == steps_from + 2
    assert c.stored() == c.expected()
    # The summary was written again: the next in-order event is a step.
    clock.advance(5_000)
    c.send(c.prosody.left(c.room, "pat-2", "pat", clock.ms))
    assert len(full_derivations) == steps_from + 2
    assert c.stored() == c.expected()
    # Everyone leaves (steps). The call stays watched on its host: a snapshot listing only
    # another room is applied from the summary (it confirms the empty room).
    for session, uid in (("pat-1", "pat"), ("doc-1", "doc")):
        clock.advance(1_000)
        c.send(c.prosody.left(c.room, session, uid, clock.ms))
    assert len(full_derivations) == steps_from + 2
    clock.advance(5_000)
    c.send(c.prosody.snapshot(clock.ms - 10, {"appointment_elsewhere": []}, interval_s=60))
    assert len(full_derivations) == steps_from + 2
    assert c.stored() == c.expected()
    # One stored but never applied to the call (a crash between its steps) is noticed by
    # the next event's counts.
    clock.advance(5_000)
    snapshot = c.prosody.snapshot(clock.ms - 10, {"appointment_elsewhere": []}, interval_s=60)
    c.sent.append(snapshot)
    write(lambda: event_store.insert(snapshot, "contract", clock.ms))
    clock.advance(5_000)
    derived_before = len(full_derivations)
    c.send(c.prosody.joined(c.room, "pat-3", "pat", clock.ms))
    assert len(full_derivations) == derived_before + 1
    assert c.stored() == c.expected()


def test_an_events_counts_in_one_statement_are_the_counts(
    settings: Settings, clock: FrozenClock
) -> None:
    """`summaries.event_counts` reads in one statement what `room_events` and `counts` read in
    three, for a call on one host: the room's events, the snapshots listing it and its
    host's snapshots and restarts since its window began (another host's do not count)."""
    c = Consultation(settings, clock)
    t0 = clock.advance(0)
    c.start(t0)
    clock.advance(30_000)
    listing: dict[str, list[tuple[str, str | None, int]]] = {
        c.room: [("doc-1", "doc", t0 + 1_000), ("pat-1", "pat", t0 + 2_000)]
    }
    c.send(c.prosody.snapshot(clock.ms - 10, listing, interval_s=60))
    # The same host's next one lists it too (one that did not would close its sessions).
    c.send(c.prosody.snapshot(clock.ms - 5, {**listing, "appointment_x": []}, interval_s=60))
    c.send(Prosody(host="muc.other.test").snapshot(clock.ms - 5, {}, interval_s=60))

    def both() -> tuple[object, object]:
        state = summaries.load(c.call_id)
        assert state is not None and len(state.counts.inputs) == 1
        separate = (summaries.room_events(c.room), summaries.counts(state, c.room))
        return summaries.event_counts(state, c.room), separate

    combined, separate = read(both)
    assert combined == separate == (3, Counts(2, ((HOST, 2),)))
