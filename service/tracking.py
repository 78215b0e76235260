"""Server-side truth: Prosody's events become each call's presence, status and durations.

Every event is stored once under its id and, in the same transaction, the affected calls are
derived again from *all* their stored events (service.domain.presence). Because derivation
is a function of the set of events, duplicates and any arrival order give the same record.
The call row is locked first, so two replicas applying events of one call take turns and
the second sees the first's events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from service.clock import now_ms
from service.config import Settings
from service.domain import rules
from service.domain.incremental import (
    INCREMENTAL_TYPES,
    CallState,
    Step,
    advance,
    confirm,
    state_of,
)
from service.domain.model import CallStatus
from service.domain.presence import CallDerivation, Params, derive_call
from service.domain.prosody import (
    RECORDING_EVENT_TYPES,
    Event,
    RoomEvent,
    Snapshot,
    SnapshotRoom,
    type_of,
)
from service.domain.record import SettledEnd, outcome, presence_record
from service.store import audit_log, clinic, hosts, summaries, uow, video_calls
from service.store import event_log as event_store
from service.store.models import Appointment, VideoCall
from service.store.rows import HostRecord, record_of
from service.transitions import mark_provisional, record_correction, record_transition
from service.webhooks import outbox

log = logging.getLogger("service.tracking")

SERVER = "prosody"
# The actor of what the sweep (service/sweeper.py) changes through `apply_in_steps`.
SWEEPER = "sweeper"


@dataclass(frozen=True)
class Ingested:
    new: bool
    calls: int


# A snapshot's room listings are stored this many per transaction before its header.
LISTING_STEP = 100
# Calls re-derived for one snapshot or restart share a transaction until it has run this
# long, so the write lock is free again within a few milliseconds (a token request waits
# for one step, not for the whole snapshot).
STEP_BUDGET_S = 0.004
STEP_PAUSE_S = 0.001
# Calls a snapshot may confirm are read and written this many at a time (a few statements
# for all of them instead of several each).
CONFIRM_BATCH = 20


def ingest(settings: Settings, event: Event, source: str) -> Ingested:
    """Store `event` (if new) and apply it to every call it concerns.

    A room event and its call's derivation commit together. A snapshot or a restart can
    concern thousands of calls, so it is stored first (a big snapshot's listings in steps,
    invisible until its header commits) and then applied in short steps, each its own
    transaction. Every step is idempotent, so a delivery that fails part-way is finished by
    the sender's retry: a repeated snapshot or restart is applied again, not skipped. The
    reply waits for the last step, so an acknowledgement still means all of it is on disk.
    """
    listings_stored = False
    if isinstance(event, Snapshot):
        rooms = event_store.listed_rooms(event)
        if len(rooms) > LISTING_STEP:
            for start in range(0, len(rooms), LISTING_STEP):
                with uow.write():
                    event_store.insert_listings(event, rooms[start : start + LISTING_STEP])
            listings_stored = True
    with uow.write():
        at = now_ms()
        new = event_store.insert(event, source, at, with_listings=not listings_stored)
        if isinstance(event, RoomEvent):
            if not new:
                return Ingested(new=False, calls=0)
            call_ids = _affected_calls(event)
            _received(event, source, at, call_ids)
            if event.recording is not None:
                _audit_recording(event, call_ids, at)
            for call_id in call_ids:
                _derive_and_apply(
                    settings,
                    call_id,
                    at,
                    cause="server_event",
                    arrival=event,
                    evidence=(event.id,),
                )
            return Ingested(new=True, calls=len(call_ids))
        if new:
            # A snapshot or restart is audited on no call: it may concern thousands.
            _received(event, source, at, [])
    with uow.read():
        call_ids = _affected_calls(event)
    apply_in_steps(
        settings,
        call_ids,
        cause="server_event",
        snapshot=event if isinstance(event, Snapshot) else None,
        evidence=(event.id,),
    )
    return Ingested(new=new, calls=len(call_ids))


def apply_in_steps(
    settings: Settings,
    call_ids: list[str],
    cause: str,
    at: int | None = None,
    snapshot: Snapshot | None = None,
    evidence: tuple[str, ...] = (),
) -> None:
    """Derive these calls again as of `at` (None: each step's now), a few per transaction
    (see STEP_BUDGET_S), in id order so that concurrent writers lock calls in one order;
    after `snapshot`, from their summaries where the snapshot confirms them (CONFIRM_BATCH
    at a time), the others in full."""
    listed: dict[str, list[SnapshotRoom]] = {}
    for room in snapshot.rooms if snapshot is not None else ():
        listed.setdefault(room.room_name, []).append(room)
    pending = sorted(call_ids)
    index = 0
    in_full: list[str] = []  # of the batches read so far, the calls not confirmed
    while index < len(pending) or in_full:
        with uow.write():
            step_at = now_ms() if at is None else at
            began = time.perf_counter()
            while index < len(pending) or in_full:
                if in_full:
                    _derive_and_apply(settings, in_full.pop(0), step_at, cause, evidence=evidence)
                elif snapshot is not None:
                    batch = pending[index : index + CONFIRM_BATCH]
                    index += len(batch)
                    in_full = _confirm(settings, batch, step_at, cause, snapshot, listed, evidence)
                else:
                    _derive_and_apply(settings, pending[index], step_at, cause, evidence=evidence)
                    index += 1
                if time.perf_counter() - began >= STEP_BUDGET_S:
                    break
        if index < len(pending) or in_full:
            # Let the requests that queued during the step run before the next one: the
            # write lock is not fair, and this thread would otherwise take it straight back
            # (and keep the GIL, which every other thread of the worker needs too).
            time.sleep(STEP_PAUSE_S)


def _received(event: Event, source: str, at: int, call_ids: list[str]) -> None:
    """The audit and the log of a newly stored event, in the transaction that stores it;
    the audit names the call when the event concerns exactly one."""
    call_id = call_ids[0] if len(call_ids) == 1 else None
    audit_log.audit(
        SERVER,
        "event.received",
        at,
        call_id,
        detail={
            "id": event.id,
            "type": type_of(event).value,
            "source": source,
            "verified": True,
        },
    )
    if event_store.seq_gap(event):
        # Something between this event and the previous one was lost; the next
        # snapshot repairs presence, and operators see the gap here and in the log.
        log.warning(
            "event sequence gap",
            extra={"fields": {"boot_id": event.boot_id, "seq": event.seq, "id": event.id}},
        )
        audit_log.audit(
            SERVER,
            "event.seq_gap",
            at,
            call_id,
            detail={"boot_id": event.boot_id, "seq": event.seq},
        )
    _note_host(event, at)


def refused(event: RoomEvent, source: str, reason: str, at: int, max_age_s: int) -> None:
    """Audit an event the receiver refused for its time (`reason`: stale or future) and store
    nothing else; the audit names the room's call if there is one, so a forged event aimed
    at a consultation shows in that call's trail."""
    with uow.write():
        call_ids = event_store.calls_for_rooms([event.room_name])
        audit_log.audit(
            SERVER,
            "event.refused",
            at,
            call_ids[0] if len(call_ids) == 1 else None,
            detail={
                "id": event.id,
                "type": event.type.value,
                "source": source,
                "host": event.host,
                "room": event.room_name,
                "occurred_at": event.occurred_at,
                "reason": reason,
                "max_age_s": max_age_s,
            },
        )


def _audit_recording(event: RoomEvent, call_ids: list[str], at: int) -> None:
    """Whether and when a consultation was recorded is what an auditor asks: one row per
    start and stop, on each call of the room."""
    assert event.recording is not None and event.type in RECORDING_EVENT_TYPES
    targets: list[str | None] = [*call_ids] or [None]
    for call_id in targets:
        audit_log.audit(
            SERVER,
            event.type.value,
            at,
            call_id,
            detail={
                "session": event.recording.session,
                "mode": event.recording.mode,
                "at": event.occurred_at,
            },
        )


def _note_host(event: Event, at: int) -> None:
    """A host logged as silent that speaks again is back: say so once (log and audit)."""
    was = hosts.note(event, at)
    if was is None:
        return
    fields = {
        "host": event.host,
        "boot_id": event.boot_id,
        "last_heard": was.last_heard,
        "heard": event.occurred_at,
    }
    log.warning("prosody host back", extra={"fields": fields})
    audit_log.audit(SERVER, "prosody_host.back", at, detail=fields)


def note_silent_hosts(now: int) -> None:
    """Hosts unheard for three snapshot intervals: said once, when first seen silent (the
    sweep asks; beside `_note_host`, which says a host is back).

    Their calls need nothing here: the derivation closes the sessions itself."""
    with uow.write():
        for row in hosts.mark_silent(now):
            fields = {
                "host": row.host,
                "boot_id": row.boot_id,
                "last_heard": row.last_heard,
                "interval_s": row.interval_s,
            }
            log.warning("prosody host silent", extra={"fields": fields})
            audit_log.audit(SWEEPER, "prosody_host.silent", now, detail=fields)


def prosody_hosts() -> list[tuple[HostRecord, bool]]:
    """Every host heard from, by name, with whether it is silent now."""
    with uow.read():
        at = now_ms()
        return [(record_of(HostRecord, row), hosts.is_silent(row, at)) for row in hosts.all_hosts()]


def _affected_calls(event: Event) -> list[str]:
    """The calls `event` can change: those of its room; for a snapshot or restart, those of
    the rooms it lists and those watched on its host (domain/record.py::watched_hosts).
    Sorted, so transactions touching several calls lock them in one order (no deadlock)."""
    if isinstance(event, RoomEvent):
        ids = event_store.calls_for_rooms([event.room_name])
    elif isinstance(event, Snapshot):
        listed = event_store.calls_for_rooms(room.room_name for room in event.rooms)
        ids = [*listed, *event_store.calls_watched_on(event.host)]
    else:
        ids = event_store.calls_watched_on(event.host)
    return sorted(set(ids))


def _params(settings: Settings, call: VideoCall, appointment: Appointment | None) -> Params:
    return Params(
        room_name=call.room_name,
        doctor_uid=call.doctor_uid,
        patient_uid=call.patient_uid,
        appointment_end_ms=appointment.ends_at if appointment is not None else None,
        call_end_grace_ms=settings.call_end_grace * 1000,
        no_show_grace_ms=settings.no_show_grace * 1000,
        max_call_ms=settings.max_call_duration * 1000,
    )


def _advance(
    call: VideoCall, params: Params, state: CallState, event: RoomEvent, at: int
) -> Step | None:
    """The event applied from the call's stored summary, if `advance` (an in-order join or
    left) can take it."""
    assert event.occupant is not None
    stored = summaries.session_rows(call.id, event.occupant.session)
    room_events, counts = summaries.event_counts(state, call.room_name)
    step = advance(
        state,
        event,
        params=params,
        now_ms=at,
        room_events=room_events,
        counts=counts,
        session_known=bool(stored),
    )
    if step is not None:
        if step.session is not None:
            event_store.replace_sessions(call.id, [step.session], stored)
        summaries.save(call.id, step.state)
    return step


def _confirm(
    settings: Settings,
    call_ids: list[str],
    at: int,
    cause: str,
    snapshot: Snapshot,
    listed: Mapping[str, list[SnapshotRoom]],
    evidence: tuple[str, ...] = (),
) -> list[str]:
    """Apply `snapshot` to these calls from their summaries where `confirm` can (reading and
    writing the summaries of all of them at once); returns the others, to derive in full.
    `listed`: the snapshot's entries by room."""
    calls = video_calls.lock_calls(call_ids)
    appointments = clinic.get_appointments(call.appointment_id for call in calls.values())
    loaded = summaries.load_many(call_ids)
    in_full = []
    confirmed: list[tuple[VideoCall, Params, Step]] = []
    for call_id in call_ids:
        call = calls.get(call_id)
        state = loaded.get(call_id)
        if call is None or state is None:
            in_full.append(call_id)
            continue
        params = _params(settings, call, appointments.get(call.appointment_id))
        step = confirm(
            state,
            snapshot,
            listed.get(call.room_name, []),
            params=params,
            now_ms=at,
            counts=summaries.counts(state, call.room_name),
        )
        if step is None:
            in_full.append(call_id)
        else:
            confirmed.append((call, params, step))
    summaries.save_many([(call.id, step.state) for call, _, step in confirmed])
    for call, params, step in confirmed:
        _save(settings, call, params, step.record, at, cause, SERVER, evidence)
    return in_full


def _derive_in_full(
    settings: Settings, call: VideoCall, params: Params, at: int, actor: str, summary: bool
) -> CallDerivation:
    """The call derived from all its room's events; `summary`: whether it may have a summary
    to replace (one read and found missing has none to remove)."""
    events, snapshots, restarts = event_store.load_for_room(
        call.room_name, settings.max_call_duration * 1000
    )
    derived = derive_call(events, snapshots, restarts, params, now_ms=at)
    stored = event_store.sessions_of(call.id)
    before = {s.session: (s.left_at, s.end_reason) for s in stored}
    event_store.replace_sessions(call.id, derived.sessions, stored)
    for repair in derived.repairs:
        if before.get(repair.session) != (repair.at, repair.reason.value):
            audit_log.audit(
                actor,
                "presence.repaired",
                at,
                call.id,
                call.appointment_id,
                detail={
                    "session": repair.session,
                    "reason": repair.reason.value,
                    "at": repair.at,
                    "latest": repair.latest,
                },
            )
    summaries.save(call.id, state_of(derived, events, snapshots, restarts, params, at), summary)
    return derived


def _derive_and_apply(
    settings: Settings,
    call_id: str,
    at: int,
    cause: str,
    arrival: RoomEvent | None = None,
    evidence: tuple[str, ...] = (),
) -> None:
    """Derive one call again after `arrival` (None: the clock moved, or the arrival is one
    the summary cannot take), from its summary when the arrival allows
    (service.domain.incremental), else from all its room's events."""
    call = video_calls.lock_call(call_id)
    params = _params(settings, call, clinic.get_appointment(call.appointment_id))
    actor = SWEEPER if cause == "sweeper" else SERVER
    step = None
    summary = True  # unknown unless read: the sweeper and restarts do not read it
    if arrival is not None and arrival.type in INCREMENTAL_TYPES and arrival.occupant:
        state = summaries.load(call.id)
        summary = state is not None
        if state is not None:
            step = _advance(call, params, state, arrival, at)
    derived = (
        step.record
        if step is not None
        else _derive_in_full(settings, call, params, at, actor, summary)
    )
    _save(settings, call, params, derived, at, cause, actor, evidence)


def _save(
    settings: Settings,
    call: VideoCall,
    params: Params,
    derived: CallDerivation,
    at: int,
    cause: str,
    actor: str,
    evidence: tuple[str, ...] = (),
) -> None:
    """Store a call's new derivation: its record, its status, the messages it owes.

    Within the correction horizon the derivation wins over a settled status too (late events
    correct it, audited as `call.corrected`); past it, the status and a COMPLETED end stay.
    `evidence`: the ids of the events this derivation follows (for the audit)."""
    call_id = call.id
    current = CallStatus(call.status)
    decided = rules.decided_at(current, call.ended_at, params.no_show_at)
    open_to_correction = settings.server_tracks_presence and rules.within_correction_horizon(
        decided, at, settings.correction_horizon * 1000
    )
    corrects = open_to_correction and rules.is_correction(current, derived.status)
    after = derived.status if corrects else current
    settled = SettledEnd(
        after,
        call.ended_at,
        call.duration,
        bool(call.duration_uncertain),
        final=not open_to_correction,
    )
    record = presence_record(derived, settled)
    previous = outcome(current, call.started_at, call.ended_at, call.duration, call.missing)
    video_calls.save_presence(call_id, record, at)
    video_calls.watch(call_id, record.watched_hosts, call.watched_hosts)
    corrected = outcome(
        after,
        record.started_at,
        record.ended_at,
        record.duration,
        record.missing.value if record.missing else None,
    )
    if corrects:
        if video_calls.transition_call(call_id, [current], after, at):
            record_correction(call, current, after, actor, at, cause, evidence, previous, corrected)
    elif current is CallStatus.COMPLETED and open_to_correction and previous != corrected:
        # The same status, measured again: start, end or duration moved.
        record_correction(call, current, current, actor, at, cause, evidence, previous, corrected)
    else:
        after = _move_status(call, current, derived.status, at, cause, actor)
    mark_provisional(
        settings, call, rules.decided_at(after, record.ended_at, params.no_show_at), at
    )
    outbox.observe(call_id, at)  # joins, leaves and waiting change no status


def _move_status(
    call: VideoCall, current: CallStatus, target: CallStatus, at: int, cause: str, actor: str
) -> CallStatus:
    """Walk from the stored status to the derived one through allowed transitions only;
    returns the status reached."""
    for step in rules.status_path(current, target):
        if not video_calls.transition_call(call.id, [current], step, at):
            break
        record_transition(call, current, step, actor, at, cause)
        current = step
    return current
