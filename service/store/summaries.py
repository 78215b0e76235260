"""Each call's incremental-derivation summary, and the counts and session an in-order event
is checked against (service.domain.incremental)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import peewee

from service.domain.incremental import CallState, Counts
from service.domain.prosody import EventType
from service.store.compiled import Compiled
from service.store.db import current
from service.store.models import DerivationState, OccupantSession, ProsodyEvent, SnapshotRoom

# Bump when CallState's fields or meaning change: an older summary is then ignored (the
# call derives in full once and writes the new one).
VERSION = 2


class _Stored(msgspec.Struct, frozen=True):
    v: int
    state: CallState


_DECODER = msgspec.json.Decoder(_Stored)
_COUNT = peewee.fn.COUNT(peewee.SQL("*"))
_STATE = Compiled(lambda call: DerivationState.select().where(DerivationState.call_id == call), "c")


def _room_events(room: str) -> peewee.ModelSelect[ProsodyEvent]:
    return ProsodyEvent.select(_COUNT).where(ProsodyEvent.room_name == room)


def _inputs(snapshot: str, started: str, host: str, start: int) -> peewee.ModelSelect[ProsodyEvent]:
    return ProsodyEvent.select(_COUNT).where(
        ProsodyEvent.type.in_([snapshot, started])
        & (ProsodyEvent.host == host)
        & (ProsodyEvent.occurred_at >= start)
    )


def _listings(room: str, start: int) -> peewee.ModelSelect[SnapshotRoom]:
    # Listings count once their snapshot's header is stored (store/event_log.py's load_for_room).
    return (
        SnapshotRoom.select(_COUNT)
        .join(ProsodyEvent, on=SnapshotRoom.event_id == ProsodyEvent.id)
        .where((SnapshotRoom.room_name == room) & (SnapshotRoom.occurred_at >= start))
    )


_ROOM_EVENTS = Compiled(_room_events, "r")
_INPUTS = Compiled(_inputs, "s", "p", "h", -1)
_LISTINGS = Compiled(_listings, "r", -1)


def _for_one_host(
    room: str, room_again: str, start: int, snapshot: str, started: str, host: str, since: int
) -> peewee.Select:
    """`room_events` and `counts` of a call on one host (nearly all), in one statement."""
    return peewee.Select(
        columns=[
            _room_events(room),
            _listings(room_again, start),
            _inputs(snapshot, started, host, since),
        ]
    ).bind(current())


_EVENT_COUNTS = Compiled(_for_one_host, "r", "r2", -1, "s", "p", "h", -2)
_SESSION = Compiled(
    lambda call, session: OccupantSession.select().where(
        (OccupantSession.call_id == call) & (OccupantSession.session == session)
    ),
    "c",
    "s",
)


def load(call_id: str) -> CallState | None:
    row = _STATE.first(DerivationState, call_id)
    return None if row is None else _decoded(row.state)


def _encoded(state: CallState) -> str:
    return msgspec.json.encode(_Stored(VERSION, state)).decode()


def _decoded(data: str) -> CallState | None:
    try:
        stored = _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # written by another version: derive in full
    return stored.state if stored.v == VERSION else None


def load_many(call_ids: Sequence[str]) -> dict[str, CallState]:
    """`load` for several calls in one statement; calls without a usable summary are left out."""
    rows = DerivationState.select().where(DerivationState.call_id.in_(list(call_ids)))
    found = {}
    for row in rows:
        state = _decoded(row.state)
        if state is not None:
            found[row.call_id] = state
    return found


def save_many(states: Sequence[tuple[str, CallState]]) -> None:
    """`save` for several calls in one statement."""
    if not states:
        return
    rows = [{"call_id": call_id, "state": _encoded(state)} for call_id, state in states]
    DerivationState.insert_many(rows).on_conflict(
        conflict_target=[DerivationState.call_id], preserve=[DerivationState.state]
    ).execute()


def save(call_id: str, state: CallState | None, stored: bool = True) -> None:
    """Write the call's summary, or remove it (`stored` False: there is none to remove)."""
    if state is None:
        if stored:
            DerivationState.delete().where(DerivationState.call_id == call_id).execute()
        return
    DerivationState.insert(call_id=call_id, state=_encoded(state)).on_conflict(
        conflict_target=[DerivationState.call_id], preserve=[DerivationState.state]
    ).execute()


def _count(query: Compiled, *args: object) -> int:
    return int(query.execute(*args).fetchone()[0])


def room_events(room_name: str) -> int:
    """The room's stored events."""
    return _count(_ROOM_EVENTS, room_name)


def counts(state: CallState, room_name: str) -> Counts:
    """The stored snapshots and restarts that concern a call with `state` (see Counts)."""
    start = state.window_start
    snapshot, started = EventType.ROOMS_SNAPSHOT.value, EventType.PROSODY_STARTED.value
    return Counts(
        _count(_LISTINGS, room_name, start),
        tuple(
            (host, _count(_INPUTS, snapshot, started, host, start))
            for host, _ in state.counts.inputs
        ),
    )


def event_counts(state: CallState, room_name: str) -> tuple[int, Counts]:
    """`room_events` and `counts` together, for an occupant event."""
    if len(state.counts.inputs) != 1:
        return room_events(room_name), counts(state, room_name)
    ((host, _),) = state.counts.inputs
    start = state.window_start
    snapshot, started = EventType.ROOMS_SNAPSHOT.value, EventType.PROSODY_STARTED.value
    events, listings, inputs = _EVENT_COUNTS.execute(
        room_name, room_name, start, snapshot, started, host, start
    ).fetchone()
    return int(events), Counts(int(listings), ((host, int(inputs)),))


def session_rows(call_id: str, session: str) -> list[OccupantSession]:
    return _SESSION.rows(OccupantSession, call_id, session)
