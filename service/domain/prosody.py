"""Events received from Prosody, as typed values: what the parsers produce and presence reads.

Both receivers (the signed version-1 contract and the stock `event_sync` module) produce these
same values, so everything after parsing has one shape to handle. Times are milliseconds since
the Unix epoch on Prosody's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EventType(StrEnum):
    """The contract's `type` values (docs/events.md)."""

    PROSODY_STARTED = "prosody.started"
    ROOM_CREATED = "room.created"
    OCCUPANT_JOINED = "occupant.joined"
    OCCUPANT_LEFT = "occupant.left"
    ROOM_DESTROYED = "room.destroyed"
    ROOMS_SNAPSHOT = "rooms.snapshot"
    # Additions to version 1 (docs/events.md): Jitsi's lobby, and recorder occupants.
    LOBBY_JOINED = "lobby.joined"
    LOBBY_LEFT = "lobby.left"
    RECORDING_STARTED = "recording.started"
    RECORDING_STOPPED = "recording.stopped"


ROOM_EVENT_TYPES = frozenset(
    {
        EventType.ROOM_CREATED,
        EventType.OCCUPANT_JOINED,
        EventType.OCCUPANT_LEFT,
        EventType.ROOM_DESTROYED,
        EventType.LOBBY_JOINED,
        EventType.LOBBY_LEFT,
        EventType.RECORDING_STARTED,
        EventType.RECORDING_STOPPED,
    }
)
OCCUPANT_EVENT_TYPES = frozenset({EventType.OCCUPANT_JOINED, EventType.OCCUPANT_LEFT})
LOBBY_EVENT_TYPES = frozenset({EventType.LOBBY_JOINED, EventType.LOBBY_LEFT})
RECORDING_EVENT_TYPES = frozenset({EventType.RECORDING_STARTED, EventType.RECORDING_STOPPED})


@dataclass(frozen=True)
class Recording:
    """A recorder occupant's session (Jibri): `mode` is `file`, `stream` or None (unknown)."""

    session: str
    mode: str | None = None


@dataclass(frozen=True)
class Occupant:
    """One occupant session in a room. `user_id` comes from the Jitsi token only."""

    session: str
    user_id: str | None
    moderator: bool | None = None
    affiliation: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class RoomEvent:
    """room.created, occupant.joined, occupant.left, room.destroyed, lobby.joined, lobby.left,
    recording.started or recording.stopped.

    `occupant` is set exactly for the occupant and lobby types, `reason` only for
    occupant.left and lobby.left, `recording` only for the recording types. `room_name` is
    always the main room's (a lobby event names the room being knocked at).
    `boot_id` and `seq` are None for `event_sync` events, which have neither.
    """

    id: str
    type: EventType
    occurred_at: int
    host: str
    boot_id: str | None
    seq: int | None
    room_name: str
    meeting_id: str | None
    occupant: Occupant | None = None
    reason: str | None = None
    recording: Recording | None = None


@dataclass(frozen=True)
class SnapshotOccupant:
    session: str
    user_id: str | None
    joined_at: int


@dataclass(frozen=True)
class SnapshotRoom:
    room_name: str
    meeting_id: str | None
    occupants: tuple[SnapshotOccupant, ...]
    # Those knocking in the room's lobby (listed by the module on the lobby component).
    lobby: tuple[SnapshotOccupant, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """rooms.snapshot: every live room of one host at `occurred_at`.

    A room that is absent had no occupants at that moment. `interval_s` is the module's
    snapshot interval (None from modules that do not send it): a host whose snapshots carry
    one is expected to be heard from at least that often (see presence's silent hosts).
    """

    id: str
    occurred_at: int
    host: str
    boot_id: str
    seq: int
    rooms: tuple[SnapshotRoom, ...]
    interval_s: int | None = None


@dataclass(frozen=True)
class ProsodyStarted:
    """prosody.started: a new Prosody process; every session of an earlier boot is gone."""

    id: str
    occurred_at: int
    host: str
    boot_id: str
    seq: int


Event = RoomEvent | Snapshot | ProsodyStarted


def type_of(event: Event) -> EventType:
    """An event's contract type: a room event carries it, the others are one type each."""
    if isinstance(event, Snapshot):
        return EventType.ROOMS_SNAPSHOT
    if isinstance(event, ProsodyStarted):
        return EventType.PROSODY_STARTED
    return event.type
