"""Each call's incremental-derivation summary, and the counts and session an in-order event
is checked against (service.domain.incremental)."""

from __future__ import annotations

import msgspec
import peewee

from service.domain.events import EventType
from service.domain.incremental import CallState
from service.store.compiled import Compiled
from service.store.models import DerivationState, OccupantSession, ProsodyEvent

# Bump when CallState's fields or meaning change: an older summary is then ignored (the
# call derives in full once and writes the new one).
VERSION = 1


class _Stored(msgspec.Struct, frozen=True):
    v: int
    state: CallState


_DECODER = msgspec.json.Decoder(_Stored)
_COUNT = peewee.fn.COUNT(peewee.SQL("*"))
_STATE = Compiled(lambda call: DerivationState.select().where(DerivationState.call_id == call), "c")
_ROOM_EVENTS = Compiled(
    lambda room: ProsodyEvent.select(_COUNT).where(ProsodyEvent.room_name == room), "r"
)
_OTHERS = Compiled(
    lambda snapshot, started, start: ProsodyEvent.select(_COUNT).where(
        ProsodyEvent.type.in_([snapshot, started]) & (ProsodyEvent.occurred_at >= start)
    ),
    "s",
    "p",
    -1,
)
_SESSION = Compiled(
    lambda call, session: OccupantSession.select().where(
        (OccupantSession.call_id == call) & (OccupantSession.session == session)
    ),
    "c",
    "s",
)


def load(call_id: str) -> CallState | None:
    row = _STATE.first(DerivationState, call_id)
    if row is None:
        return None
    try:
        stored = _DECODER.decode(row.state)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # written by another version: derive in full
    return stored.state if stored.v == VERSION else None


def save(call_id: str, state: CallState | None, stored: bool = True) -> None:
    """Write the call's summary, or remove it (`stored` False: there is none to remove)."""
    if state is None:
        if stored:
            DerivationState.delete().where(DerivationState.call_id == call_id).execute()
        return
    data = msgspec.json.encode(_Stored(VERSION, state)).decode()
    DerivationState.insert(call_id=call_id, state=data).on_conflict(
        conflict_target=[DerivationState.call_id], preserve=[DerivationState.state]
    ).execute()


def _count(query: Compiled, *args: object) -> int:
    return int(query.execute(*args).fetchone()[0])


def room_events(room_name: str) -> int:
    """The room's stored events."""
    return _count(_ROOM_EVENTS, room_name)


def others(window_start: int) -> int:
    """The snapshots and restarts stored from `window_start` on."""
    return _count(
        _OTHERS, EventType.ROOMS_SNAPSHOT.value, EventType.PROSODY_STARTED.value, window_start
    )


def session_rows(call_id: str, session: str) -> list[OccupantSession]:
    return _SESSION.rows(OccupantSession, call_id, session)
