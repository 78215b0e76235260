"""Received Prosody events: stored once by id, read back per call for derivation."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

from service.domain.model import CallStatus
from service.domain.presence import PresenceSession
from service.domain.prosody import (
    Event,
    EventType,
    Occupant,
    ProsodyStarted,
    Recording,
    RoomEvent,
    Snapshot,
    SnapshotOccupant,
    type_of,
)
from service.domain.prosody import SnapshotRoom as SnapshotRoomValue
from service.store.batches import chunks
from service.store.compiled import Compiled, unconverted
from service.store.models import CallHost, OccupantSession, ProsodyEvent, SnapshotRoom, VideoCall


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


_INSERT_COLUMNS = (
    "id",
    "type",
    "source",
    "host",
    "boot_id",
    "seq",
    "occurred_at",
    "received_at",
    "room_name",
    "meeting_id",
    "data",
)
_INSERT = Compiled(
    lambda *values: (
        ProsodyEvent.insert(dict(zip(_INSERT_COLUMNS, values, strict=True)))
        .on_conflict_ignore()
        .returning(ProsodyEvent.id)
    ),
    "i",
    "t",
    "s",
    "h",
    "b",
    -1,
    -2,
    -3,
    "r",
    "m",
    "d",
)
_ROOM_EVENTS = Compiled(
    lambda room: (
        ProsodyEvent.select(ProsodyEvent.data)
        .where(ProsodyEvent.room_name == room)
        .order_by(ProsodyEvent.occurred_at)
    ),
    "r",
)
# Only listings of stored snapshots: a big snapshot's listings are written in steps before
# its header, and until the header commits the snapshot does not exist for anyone.
_LISTINGS = Compiled(
    lambda room: (
        SnapshotRoom.select()
        .join(ProsodyEvent, on=SnapshotRoom.event_id == ProsodyEvent.id)
        .where(SnapshotRoom.room_name == room)
        .order_by(SnapshotRoom.occurred_at)
    ),
    "r",
)
_HEADER_FIELDS = (
    ProsodyEvent.id,
    ProsodyEvent.occurred_at,
    ProsodyEvent.host,
    ProsodyEvent.boot_id,
    ProsodyEvent.seq,
)
# Snapshots are read per room (SnapshotRoom), so only their headers (and their `data`, which
# holds nothing but the announced interval) are needed here.
_SNAPSHOTS = Compiled(
    lambda kind, start, end: (
        ProsodyEvent.select(*_HEADER_FIELDS, ProsodyEvent.data)
        .where((ProsodyEvent.type == kind) & ProsodyEvent.occurred_at.between(start, end))
        .order_by(ProsodyEvent.occurred_at)
    ),
    "k",
    -1,
    -2,
)
_RESTARTS = Compiled(
    lambda kind, start: ProsodyEvent.select(*_HEADER_FIELDS).where(
        (ProsodyEvent.type == kind) & (ProsodyEvent.occurred_at >= start)
    ),
    "k",
    -1,
)
_PREVIOUS = Compiled(
    lambda boot, seq: ProsodyEvent.select(ProsodyEvent.id).where(
        (ProsodyEvent.boot_id == boot) & (ProsodyEvent.seq == seq)
    ),
    "b",
    -1,
)
_CALL_FOR_ROOM = Compiled(
    lambda room: VideoCall.select(VideoCall.id).where(VideoCall.room_name == room), "r"
)
_SESSIONS = Compiled(
    lambda call: (
        OccupantSession.select()
        .where(OccupantSession.call_id == call)
        .order_by(OccupantSession.joined_at.asc(nulls="LAST"), OccupantSession.session)
    ),
    "c",
)


def insert(event: Event, source: str, received_at: int, *, with_listings: bool = True) -> bool:
    """Store the event under its id; False if that id was already stored (a duplicate).

    ON CONFLICT DO NOTHING makes two replicas receiving the same event store it once. A
    snapshot's room listings are stored with it, unless `with_listings` is False because
    `insert_listings` stored them already, in steps.
    """
    row: dict[str, Any] = {
        "id": event.id,
        "type": type_of(event).value,
        "source": source,
        "host": event.host,
        "boot_id": event.boot_id,
        "seq": event.seq,
        "occurred_at": event.occurred_at,
        "received_at": received_at,
        "room_name": None,
        "meeting_id": None,
        "data": "{}",
    }
    if isinstance(event, RoomEvent):
        row.update(room_name=event.room_name, meeting_id=event.meeting_id)
        row["data"] = _compact(asdict(event))
    elif isinstance(event, Snapshot) and event.interval_s is not None:
        row["data"] = _compact({"interval_s": event.interval_s})
    # RETURNING yields the row only if it was inserted; rowcount is unreliable with RETURNING
    # on SQLite, the fetched rows are not.
    cursor = _INSERT.execute(*(row[c] for c in _INSERT_COLUMNS))
    if len(cursor.fetchall()) != 1:
        return False
    if isinstance(event, Snapshot) and with_listings:
        insert_listings(event, listed_rooms(event))
    return True


def listed_rooms(snapshot: Snapshot) -> list[SnapshotRoomValue]:
    """One listing per room name; a room listed twice keeps its last listing."""
    return list({room.room_name: room for room in snapshot.rooms}.values())


def insert_listings(snapshot: Snapshot, rooms: Sequence[SnapshotRoomValue]) -> None:
    """Store these listings of `snapshot`; those already stored are left as they are, so a
    repeated step (a retry, another replica) changes nothing."""
    if not rooms:
        return
    SnapshotRoom.insert_many(
        [
            {
                "event_id": snapshot.id,
                "occurred_at": snapshot.occurred_at,
                "room_name": room.room_name,
                "meeting_id": room.meeting_id,
                "occupants": _compact([asdict(o) for o in room.occupants]),
                "lobby": _compact([asdict(o) for o in room.lobby]) if room.lobby else None,
            }
            for room in rooms
        ]
    ).on_conflict_ignore().execute()


def _room_event(data: str) -> RoomEvent:
    raw = json.loads(data)
    occupant = raw.pop("occupant", None)
    recording = raw.pop("recording", None)
    return RoomEvent(
        **{**raw, "type": EventType(raw["type"])},
        occupant=Occupant(**occupant) if occupant else None,
        recording=Recording(**recording) if recording else None,
    )


def seq_gap(event: Event) -> bool:
    """True when the event before this one from the same Prosody boot was never received."""
    if event.boot_id is None or event.seq is None or event.seq <= 1:
        return False
    return not _PREVIOUS.rows(ProsodyEvent, event.boot_id, event.seq - 1)


def load_for_room(
    room_name: str, max_call_ms: int
) -> tuple[list[RoomEvent], list[Snapshot], list[ProsodyStarted]]:
    """Everything derivation needs for one room, in a bounded time window.

    Snapshots matter only while a session of this room could be open: from the room's first
    event (or first listing) to its last plus the longest call. Each snapshot is read with
    only this room's listing: a snapshot that does not list the room says it was empty.
    """
    events = [_room_event(row.data) for row in _ROOM_EVENTS.rows(ProsodyEvent, room_name)]
    listings = _LISTINGS.rows(SnapshotRoom, room_name)
    times = [e.occurred_at for e in events] + [row.occurred_at for row in listings]
    if not times:
        return [], [], []
    start, end = min(times), max(times) + max_call_ms
    by_snapshot = {row.event_id: row for row in listings}
    snapshots = [
        Snapshot(
            id=row.id,
            occurred_at=row.occurred_at,
            host=row.host,
            boot_id=row.boot_id or "",
            seq=row.seq or 0,
            rooms=_listing(by_snapshot.get(row.id)),
            interval_s=_snapshot_interval(row.data),
        )
        for row in _SNAPSHOTS.rows(ProsodyEvent, EventType.ROOMS_SNAPSHOT.value, start, end)
    ]
    restarts = [
        ProsodyStarted(row.id, row.occurred_at, row.host, row.boot_id or "", row.seq or 0)
        for row in _RESTARTS.rows(ProsodyEvent, EventType.PROSODY_STARTED.value, start)
    ]
    return events, snapshots, restarts


def _snapshot_interval(data: str) -> int | None:
    value = json.loads(data).get("interval_s") if data and data != "{}" else None
    return value if isinstance(value, int) else None


def _listing(row: SnapshotRoom | None) -> tuple[SnapshotRoomValue, ...]:
    if row is None:
        return ()
    occupants = tuple(SnapshotOccupant(**o) for o in json.loads(row.occupants))
    lobby = tuple(SnapshotOccupant(**o) for o in json.loads(row.lobby or "[]"))
    return (SnapshotRoomValue(row.room_name, row.meeting_id, occupants, lobby),)


def calls_for_rooms(room_names: Iterable[str]) -> list[str]:
    names = list(set(room_names))
    if len(names) == 1:  # a room event: the common case
        return [row.id for row in _CALL_FOR_ROOM.rows(VideoCall, names[0])]
    ids: list[str] = []
    for chunk in chunks(names):
        ids.extend(
            row.id for row in VideoCall.select(VideoCall.id).where(VideoCall.room_name.in_(chunk))
        )
    return ids


def open_tracked_calls(limit: int = 5000) -> list[str]:
    """Calls the server tracks that are not settled yet: the sweeper's and repairs' scope."""
    query = (
        VideoCall.select(VideoCall.id)
        .where(
            VideoCall.tracked_by_server
            & VideoCall.status.in_([CallStatus.SCHEDULED.value, CallStatus.IN_PROGRESS.value])
        )
        .order_by(VideoCall.id)
        .limit(limit)
    )
    return [row.id for row in query]


# A call watched on every host: those open when migration 0010 ran, until derived again.
EVERY_HOST = "*"


def calls_watched_on(host: str) -> list[str]:
    """The calls a snapshot or restart of `host` can change without listing their room."""
    query = CallHost.select(CallHost.call_id).where(CallHost.host.in_([host, EVERY_HOST]))
    return [row.call_id for row in query]


_ROOM_SOURCES = Compiled(
    lambda room: (
        ProsodyEvent.select(ProsodyEvent.source).where(ProsodyEvent.room_name == room).distinct()
    ),
    "r",
)


def room_source(room_name: str) -> str | None:
    """Which receiver the room's events came through: "event_sync" if any did (the record
    is then only as trustworthy as those unsigned events), "v1" if all came signed, None
    if none was stored."""
    sources = {row.source for row in _ROOM_SOURCES.rows(ProsodyEvent, room_name)}
    if not sources:
        return None
    return "event_sync" if "event_sync" in sources else "v1"


def sessions_of(call_id: str) -> list[OccupantSession]:
    """A call's sessions, the earliest join first (sessions never seen joining last)."""
    return _SESSIONS.rows(OccupantSession, call_id)


_SESSION_COLUMNS = (
    "call_id",
    "session",
    "user_id",
    "role",
    "joined_at",
    "left_at",
    "end_reason",
    "repaired",
    "counted",
    "left_at_latest",
)
_BOOLEAN_SESSION_COLUMNS = frozenset({"repaired", "counted"})
_INSERT_SESSION = Compiled(
    lambda *values: OccupantSession.insert(
        {
            name: unconverted(value) if name in _BOOLEAN_SESSION_COLUMNS else value
            for name, value in zip(_SESSION_COLUMNS, values, strict=True)
        }
    ),
    "c", "s", "u", "r", -1, -2, "e", "repaired", "counted", -3,
)  # fmt: skip


def _session_row(call_id: str, s: PresenceSession) -> tuple[Any, ...]:
    reason = s.end_reason.value if s.end_reason else None
    return (call_id, s.session, s.user_id, s.role.value, s.joined_at, s.left_at, reason,
            s.repaired, s.counted, s.left_at_latest)  # fmt: skip


def _stored_row(row: OccupantSession) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in _SESSION_COLUMNS)


def replace_sessions(
    call_id: str, sessions: Sequence[PresenceSession], stored: Sequence[OccupantSession]
) -> None:
    """Make the stored sessions equal the derived ones, writing only the rows that differ.

    Most events change one session of a call; rewriting all of them made an event's cost
    grow with the room's history.
    """
    old = {row.session: _stored_row(row) for row in stored}
    new = {s.session: _session_row(call_id, s) for s in sessions}
    stale = [name for name, row in old.items() if new.get(name) != row]
    for chunk in chunks(stale):
        OccupantSession.delete().where(
            (OccupantSession.call_id == call_id) & OccupantSession.session.in_(chunk)
        ).execute()
    for name, row in new.items():
        if old.get(name) != row:
            _INSERT_SESSION.execute(*row)


def prune_snapshots(before_ms: int, batch: int = 1000) -> int:
    """Delete snapshots older than `before_ms` (their listings too); returns how many.

    Snapshots arrive every minute and matter only while a call could still be open; room
    events are kept for the audit trail.
    """
    ids = [
        row.id
        for row in ProsodyEvent.select(ProsodyEvent.id)
        .where(
            (ProsodyEvent.type == EventType.ROOMS_SNAPSHOT.value)
            & (ProsodyEvent.occurred_at < before_ms)
        )
        .limit(batch)
    ]
    if ids:
        SnapshotRoom.delete().where(SnapshotRoom.event_id.in_(ids)).execute()
        ProsodyEvent.delete().where(ProsodyEvent.id.in_(ids)).execute()
    return len(ids)
