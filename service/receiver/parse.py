"""Request bodies to domain events: the version-1 contract and the stock `event_sync` module.

Both parsers are strict about what they read (types, required fields, ranges) and ignore
fields they do not know, so a newer module can add fields without breaking this receiver.
A body that fails here can never become valid, so the receiver answers 400 and stores nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from service import strict_json
from service.domain.model import EndReason
from service.domain.prosody import (
    LOBBY_EVENT_TYPES,
    OCCUPANT_EVENT_TYPES,
    RECORDING_EVENT_TYPES,
    Event,
    EventType,
    Occupant,
    ProsodyStarted,
    Recording,
    RoomEvent,
    Snapshot,
    SnapshotOccupant,
    SnapshotRoom,
)
from service.fields import MAX_ID_CHARS, MAX_TIME_MS, MIN_TIME_MS

# A snapshot of a busy deployment lists every live room; 4 MiB is far above that and still
# small enough to refuse abuse before json.loads allocates. The event route's request limit
# too (service/api/prosody.py).
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_NAME_CHARS = 255
MAX_ROOMS = 20_000
MAX_OCCUPANTS = 1_000
MAX_SEQ = 2**53 - 1

EVENT_ID = re.compile(
    r"evt_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)

# The paths after /api/event-sync/events/ that the stock module posts, and what each is.
EVENT_SYNC_KINDS: Mapping[str, EventType] = {
    "room/created": EventType.ROOM_CREATED,
    "room/destroyed": EventType.ROOM_DESTROYED,
    "occupant/joined": EventType.OCCUPANT_JOINED,
    "occupant/left": EventType.OCCUPANT_LEFT,
}
# event_sync's occupant.left carries no reason; the hook only fires for a real leave.
EVENT_SYNC_LEFT_REASON = EndReason.LEFT.value


class InvalidEvent(ValueError):
    """The body can never be accepted; the message says why (safe to return to the sender)."""


def _fail(message: str) -> NoReturn:
    raise InvalidEvent(message)


def _load(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        _fail(f"body larger than {MAX_BODY_BYTES} bytes")
    # Duplicate keys, NaN, deep nesting, huge integers, NUL and lone surrogates are refused
    # here for every field, known or not (service/strict_json.py says why).
    try:
        return strict_json.loads_object(body)
    except strict_json.InvalidJson as exc:
        _fail(f"body {exc}")


def _obj(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        _fail(f"{where}{key} must be an object")
    return value


def _str(data: Mapping[str, Any], key: str, where: str, *, limit: int = MAX_NAME_CHARS) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        _fail(f"{where}{key} must be a non-empty string")
    if len(value) > limit:
        _fail(f"{where}{key} is longer than {limit} characters")
    return value


def _opt_str(
    data: Mapping[str, Any], key: str, where: str, *, limit: int = MAX_NAME_CHARS
) -> str | None:
    if data.get(key) is None:
        return None
    return _str(data, key, where, limit=limit)


def _opt_bool(data: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    _fail(f"{where}{key} must be true or false")


def _int(data: Mapping[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = data.get(key)
    # bool is an int in Python; `true` is never a valid time or sequence number.
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(f"{where}{key} must be an integer")
    if not low <= value <= high:
        _fail(f"{where}{key} is out of range")
    return value


def _time(data: Mapping[str, Any], key: str, where: str) -> int:
    return _int(data, key, where, MIN_TIME_MS, MAX_TIME_MS)


def _list(data: Mapping[str, Any], key: str, where: str, limit: int) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        _fail(f"{where}{key} must be an array")
    if len(value) > limit:
        _fail(f"{where}{key} has more than {limit} items")
    return value


def _room_fields(room: Mapping[str, Any], where: str) -> tuple[str, str]:
    """(lower-cased room name, meeting id); Jitsi treats room names case-insensitively."""
    name = _str(room, "name", where).lower()
    _opt_str(room, "jid", where, limit=2 * MAX_NAME_CHARS)
    meeting_id = _str(room, "meeting_id", where, limit=MAX_ID_CHARS)
    return name, meeting_id


def _occupant(data: Mapping[str, Any]) -> Occupant:
    occupant = _obj(data, "occupant", "")
    where = "occupant."
    return Occupant(
        session=_str(occupant, "session", where, limit=MAX_ID_CHARS),
        user_id=_opt_str(occupant, "user_id", where),
        moderator=_opt_bool(occupant, "moderator", where),
        affiliation=_opt_str(occupant, "affiliation", where, limit=32),
        role=_opt_str(occupant, "role", where, limit=32),
    )


def _snapshot_room(item: Any, index: int) -> SnapshotRoom:
    where = f"rooms[{index}]."
    if not isinstance(item, dict):
        _fail(f"rooms[{index}] must be an object")
    # The canonical shape nests the room fields like every other event ({"room": {...},
    # "occupants": [...]}); the flat shape is accepted too because the contract's wording
    # ("with `room` fields") allows both and neither can be mistaken for the other.
    room = item["room"] if isinstance(item.get("room"), dict) else item
    name, meeting_id = _room_fields(room, where + ("room." if room is not item else ""))
    occupants = _snapshot_occupants(_list(item, "occupants", where, MAX_OCCUPANTS), where)
    # `lobby` (an addition to version 1): those knocking; absent from older modules.
    lobby: tuple[SnapshotOccupant, ...] = ()
    if item.get("lobby") is not None:
        lobby = _snapshot_occupants(_list(item, "lobby", where, MAX_OCCUPANTS), where, "lobby")
    return SnapshotRoom(name, meeting_id, occupants, lobby)


def _snapshot_occupants(
    items: list[Any], where: str, key: str = "occupants"
) -> tuple[SnapshotOccupant, ...]:
    occupants = []
    for position, raw in enumerate(items):
        at = f"{where}{key}[{position}]."
        if not isinstance(raw, dict):
            _fail(f"{at[:-1]} must be an object")
        occupants.append(
            SnapshotOccupant(
                session=_str(raw, "session", at, limit=MAX_ID_CHARS),
                user_id=_opt_str(raw, "user_id", at),
                joined_at=_time(raw, "joined_at", at),
            )
        )
    return tuple(occupants)


# A day: a longer interval would let a dead host's calls run on for days anyway.
MAX_INTERVAL_S = 86_400


def _interval_s(data: Mapping[str, Any]) -> int | None:
    """rooms.snapshot's optional `interval_s` (absent: a module from before it existed)."""
    value = data.get("interval_s")
    if value is None:
        return None
    # Lua has one number type; an encoder may write 60 as 60.0.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_INTERVAL_S:
        _fail(f"interval_s must be whole seconds from 1 to {MAX_INTERVAL_S}")
    return value


def parse_v1(body: bytes) -> Event:
    """Parse one version-1 event body (docs/events.md) or raise InvalidEvent."""
    data = _load(body)
    version = data.get("version")
    if version != 1 or isinstance(version, bool):
        _fail("version must be 1")
    event_id = _str(data, "id", "", limit=MAX_ID_CHARS)
    if not EVENT_ID.fullmatch(event_id):
        _fail("id must be evt_ followed by a UUID")
    raw_type = _str(data, "type", "", limit=64)
    try:
        event_type = EventType(raw_type)
    except ValueError:
        _fail(f"unknown type {raw_type!r}")
    occurred_at = _time(data, "occurred_at", "")
    source = _obj(data, "source", "")
    host = _str(source, "host", "source.")
    boot_id = _str(source, "boot_id", "source.", limit=MAX_ID_CHARS)
    seq = _int(source, "seq", "source.", 0, MAX_SEQ)

    if event_type is EventType.PROSODY_STARTED:
        return ProsodyStarted(event_id, occurred_at, host, boot_id, seq)
    if event_type is EventType.ROOMS_SNAPSHOT:
        rooms = _list(data, "rooms", "", MAX_ROOMS)
        parsed = tuple(_snapshot_room(item, index) for index, item in enumerate(rooms))
        interval_s = _interval_s(data)
        return Snapshot(event_id, occurred_at, host, boot_id, seq, parsed, interval_s)

    name, meeting_id = _room_fields(_obj(data, "room", ""), "room.")
    occupant = None
    reason = None
    recording = None
    if event_type in OCCUPANT_EVENT_TYPES or event_type in LOBBY_EVENT_TYPES:
        occupant = _occupant(data)
    if event_type in (EventType.OCCUPANT_LEFT, EventType.LOBBY_LEFT):
        # Any short string: a reason added by a newer module is stored as sent and counted
        # as `unknown`, rather than losing the whole `left` to a 400.
        reason = _str(data, "reason", "", limit=64)
    if event_type in RECORDING_EVENT_TYPES:
        recording = _recording(data)
    return RoomEvent(
        id=event_id,
        type=event_type,
        occurred_at=occurred_at,
        host=host,
        boot_id=boot_id,
        seq=seq,
        room_name=name,
        meeting_id=meeting_id,
        occupant=occupant,
        reason=reason,
        recording=recording,
    )


RECORDING_MODES = frozenset({"file", "stream"})


def _recording(data: Mapping[str, Any]) -> Recording:
    """recording.started / recording.stopped's `recording`: {session, mode}; a mode other than
    `file` or `stream` (or none) is stored as None: unknown, never a reason to lose the event."""
    recording = _obj(data, "recording", "")
    mode = recording.get("mode")
    return Recording(
        session=_str(recording, "session", "recording.", limit=MAX_ID_CHARS),
        mode=mode if mode in RECORDING_MODES else None,
    )


# --- jitsi-contrib event_sync ---------------------------------------------------------------


def _seconds(data: Mapping[str, Any], key: str, where: str) -> int:
    """event_sync's whole Unix seconds (os.time()) as milliseconds."""
    value = data.get(key)
    # Lua has one number type; an encoder may write 1625823996 as 1625823996.0.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(f"{where}{key} must be whole Unix seconds")
    millis = value * 1000
    if not MIN_TIME_MS <= millis <= MAX_TIME_MS:
        _fail(f"{where}{key} is out of range")
    return millis


def _digest(parts: list[Any]) -> str:
    # JSON of a list is an unambiguous encoding of the parts (no delimiter can collide).
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()


def _jid_parts(room_jid: str) -> tuple[str, str]:
    node, sep, domain = room_jid.partition("@")
    if not sep or not node or not domain:
        _fail("room_jid must be a room@host JID")
    return node, domain.partition("/")[0]


def parse_event_sync(kind: str, body: bytes, *, host: str) -> RoomEvent:
    """Parse one request of the stock `event_sync` module; `kind` is the path after /events/,
    `host` the MUC component it runs on (EVENT_SYNC_HOST).

    The module sends no id, session or meeting id, so they are derived deterministically:
    - `id`: "es_" + sha256 of the kind and the fields that identify the event, so the module's
      retries of one event get the same id and are deduplicated.
    - occupant `session`: "es_" + sha256 of the room JID, occupant JID and `joined_at`; the
      module repeats `joined_at` in `left`, so both events of one session agree.
    - `meeting_id`: None for the main room, because `occupant/*` requests do not carry the
      room's `created_at`; presence then tells meetings of one room apart by time. Breakout
      rooms get "breakout_<breakout_room_id>" so their destruction never closes sessions of
      the main room (their occupants still count as present in the call).
    - `host`: the configured `host`, whatever domain `room_jid` names (event_sync signs
      nothing, so a body naming its own host could invent hosts); `boot_id` and `seq` are None.
    """
    event_type = EVENT_SYNC_KINDS.get(kind)
    if event_type is None:
        _fail(f"unknown event_sync path {kind!r}")
    data = _load(body)
    room_jid = _opt_str(data, "room_jid", "", limit=2 * MAX_NAME_CHARS)
    if room_jid is not None:
        node, _ = _jid_parts(room_jid)
    else:
        node = _str(data, "room_name", "")
    room_name = node.lower()
    breakout = None
    if _opt_bool(data, "is_breakout", ""):
        breakout = _str(data, "breakout_room_id", "").lower()
    meeting_id = None if breakout is None else f"breakout_{breakout}"
    identity: list[Any] = [kind, room_name, host, breakout]

    occupant = None
    reason = None
    if event_type is EventType.ROOM_CREATED:
        occurred_at = _seconds(data, "created_at", "")
        identity.append(occurred_at)
    elif event_type is EventType.ROOM_DESTROYED:
        occurred_at = _seconds(data, "destroyed_at", "")
        identity.append(occurred_at)
    else:
        raw = _obj(data, "occupant", "")
        occupant_jid = _str(raw, "occupant_jid", "occupant.", limit=3 * MAX_NAME_CHARS)
        joined_at = _seconds(raw, "joined_at", "occupant.")
        user_id = raw.get("id")
        # include_user_info may copy a numeric id from the token's context.
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)
        if user_id is not None and (
            not isinstance(user_id, str) or not user_id or len(user_id) > MAX_NAME_CHARS
        ):
            _fail("occupant.id must be a non-empty string")
        session = "es_" + _digest([room_name, host, breakout, occupant_jid, joined_at])[:40]
        occupant = Occupant(session=session, user_id=user_id)
        if event_type is EventType.OCCUPANT_JOINED:
            occurred_at = joined_at
        else:
            occurred_at = _seconds(raw, "left_at", "occupant.")
            if occurred_at < joined_at:
                _fail("occupant.left_at is before occupant.joined_at")
            reason = EVENT_SYNC_LEFT_REASON
        identity += [session, occurred_at]

    return RoomEvent(
        id="es_" + _digest(identity)[:40],
        type=event_type,
        occurred_at=occurred_at,
        host=host,
        boot_id=None,
        seq=None,
        room_name=room_name,
        meeting_id=meeting_id,
        occupant=occupant,
        reason=reason,
    )
