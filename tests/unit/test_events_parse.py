"""Tests for service.receiver.parse.parse_v1: every type, and every way a body can be wrong."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from service.domain.prosody import (
    EventType,
    Occupant,
    ProsodyStarted,
    RoomEvent,
    Snapshot,
    SnapshotOccupant,
    SnapshotRoom,
)
from service.receiver.parse import MAX_BODY_BYTES, InvalidEvent, parse_v1

EVENT_ID = "evt_3f0c2f7e-5b1d-4c59-9a43-0b6f2d0e2a11"
WHEN = 1_795_504_319_123  # a fixed instant: parsing reads no clock
SOURCE = {"host": "muc.meet.jitsi", "boot_id": "b_1795504000_4f2a", "seq": 42}
ROOM = {
    "name": "Appointment_CLxxx123456789",
    "jid": "appointment_clxxx123456789@muc.meet.jitsi",
    "meeting_id": "6b1c-meeting",
}
OCCUPANT = {
    "session": "s_9a0e",
    "user_id": "doctor123",
    "moderator": True,
    "affiliation": "owner",
    "role": "moderator",
}


def body(kind: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": 1,
        "id": EVENT_ID,
        "type": kind,
        "occurred_at": WHEN,
        "source": dict(SOURCE),
    }
    if kind in ("room.created", "room.destroyed", "occupant.joined", "occupant.left"):
        data["room"] = dict(ROOM)
    if kind in ("occupant.joined", "occupant.left"):
        data["occupant"] = dict(OCCUPANT)
    if kind == "occupant.left":
        data["reason"] = "left"
    data.update(extra)
    return data


def parse(data: Any) -> Any:
    return parse_v1(json.dumps(data).encode())


def test_occupant_joined_from_the_contract_example() -> None:
    event = parse(body("occupant.joined", reason=None))
    assert event == RoomEvent(
        id=EVENT_ID,
        type=EventType.OCCUPANT_JOINED,
        occurred_at=WHEN,
        host="muc.meet.jitsi",
        boot_id="b_1795504000_4f2a",
        seq=42,
        room_name="appointment_clxxx123456789",
        meeting_id="6b1c-meeting",
        occupant=Occupant("s_9a0e", "doctor123", True, "owner", "moderator"),
        reason=None,
    )


@pytest.mark.parametrize("reason", ["left", "kicked", "room_destroyed", "unknown", "newer"])
def test_occupant_left_keeps_its_reason(reason: str) -> None:
    event = parse(body("occupant.left", reason=reason))
    assert isinstance(event, RoomEvent)
    assert (event.type, event.reason) == (EventType.OCCUPANT_LEFT, reason)


@pytest.mark.parametrize("kind", ["room.created", "room.destroyed"])
def test_room_events(kind: str) -> None:
    event = parse(body(kind, occupant={"ignored": True}))
    assert isinstance(event, RoomEvent)
    assert event.type == kind
    assert event.occupant is None and event.reason is None
    assert event.room_name == "appointment_clxxx123456789"


def test_prosody_started() -> None:
    assert parse(body("prosody.started")) == ProsodyStarted(
        EVENT_ID, WHEN, "muc.meet.jitsi", "b_1795504000_4f2a", 42
    )


def test_snapshot_nested_and_flat_rooms() -> None:
    rooms = [
        {
            "room": ROOM,
            "occupants": [{"session": "s1", "user_id": "u1", "joined_at": WHEN - 5}],
        },
        {"name": "Other", "meeting_id": "m2", "occupants": [{"session": "s2", "joined_at": WHEN}]},
        {"room": {"name": "empty", "meeting_id": "m3"}, "occupants": []},
    ]
    event = parse(body("rooms.snapshot", rooms=rooms))
    assert event == Snapshot(
        EVENT_ID,
        WHEN,
        "muc.meet.jitsi",
        "b_1795504000_4f2a",
        42,
        (
            SnapshotRoom(
                "appointment_clxxx123456789",
                "6b1c-meeting",
                (SnapshotOccupant("s1", "u1", WHEN - 5),),
            ),
            SnapshotRoom("other", "m2", (SnapshotOccupant("s2", None, WHEN),)),
            SnapshotRoom("empty", "m3", ()),
        ),
    )


def test_unknown_fields_are_ignored_and_user_id_may_be_absent() -> None:
    data = body("occupant.joined", future={"x": [1, 2]})
    data["source"]["region"] = "eu"
    data["room"]["extra"] = 1
    del data["occupant"]["user_id"]
    del data["occupant"]["moderator"]
    event = parse(data)
    assert isinstance(event, RoomEvent)
    assert event.occupant == Occupant("s_9a0e", None, None, "owner", "moderator")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"{",
        b"[]",
        b'"string"',
        b"\xff\xfe",
        b'{"version": 1, "version": 1}',
        b'{"version": NaN}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_malformed_bodies(raw: bytes) -> None:
    with pytest.raises(InvalidEvent):
        parse_v1(raw)


def test_oversize_body() -> None:
    with pytest.raises(InvalidEvent, match="larger"):
        parse_v1(b" " * (MAX_BODY_BYTES + 1))


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return data


DELETE = object()
BAD: list[tuple[str, str, Any]] = [
    ("occupant.joined", "version", 2),
    ("occupant.joined", "version", "1"),
    ("occupant.joined", "version", True),
    ("occupant.joined", "version", DELETE),
    ("occupant.joined", "id", "3f0c2f7e-5b1d-4c59-9a43-0b6f2d0e2a11"),
    ("occupant.joined", "id", "evt_not-a-uuid"),
    ("occupant.joined", "id", 12),
    ("occupant.joined", "id", DELETE),
    ("occupant.joined", "type", "occupant.teleported"),
    ("occupant.joined", "type", None),
    ("occupant.joined", "occurred_at", str(WHEN)),
    ("occupant.joined", "occurred_at", WHEN + 0.5),
    ("occupant.joined", "occurred_at", True),
    ("occupant.joined", "occurred_at", WHEN // 1000),  # seconds, not ms
    ("occupant.joined", "occurred_at", 10**16),
    ("occupant.joined", "occurred_at", DELETE),
    ("occupant.joined", "source", "muc"),
    ("occupant.joined", "source", DELETE),
    ("occupant.joined", "source.host", ""),
    ("occupant.joined", "source.host", "h" * 300),
    ("occupant.joined", "source.boot_id", None),
    ("occupant.joined", "source.seq", -1),
    ("occupant.joined", "source.seq", 2**60),
    ("occupant.joined", "source.seq", "42"),
    ("occupant.joined", "room", DELETE),
    ("occupant.joined", "room", []),
    ("occupant.joined", "room.name", DELETE),
    ("occupant.joined", "room.name", 5),
    ("occupant.joined", "room.meeting_id", DELETE),
    ("occupant.joined", "room.jid", 7),
    ("occupant.joined", "occupant", DELETE),
    ("occupant.joined", "occupant", "s_9a0e"),
    ("occupant.joined", "occupant.session", DELETE),
    ("occupant.joined", "occupant.session", "s" * 200),
    ("occupant.joined", "occupant.user_id", 123),
    ("occupant.joined", "occupant.user_id", ""),
    ("occupant.joined", "occupant.moderator", "yes"),
    ("occupant.left", "reason", DELETE),
    ("occupant.left", "reason", None),
    ("occupant.left", "reason", "x" * 65),
    ("room.destroyed", "room", None),
    ("rooms.snapshot", "type", "rooms.snapshot"),  # no rooms at all
    ("rooms.snapshot", "rooms", {}),
    ("rooms.snapshot", "rooms", ["room"]),
    ("rooms.snapshot", "rooms", [{"room": ROOM}]),
    ("rooms.snapshot", "rooms", [{"room": ROOM, "occupants": [{"session": "s"}]}]),
    ("rooms.snapshot", "rooms", [{"room": ROOM, "occupants": ["s"]}]),
    (
        "rooms.snapshot",
        "rooms",
        [{"room": ROOM, "occupants": [{"session": "s", "joined_at": 1}]}],
    ),
    ("rooms.snapshot", "rooms", [{"occupants": []}]),
    ("rooms.snapshot", "interval_s", 0),
    ("rooms.snapshot", "interval_s", 86_401),
    ("rooms.snapshot", "interval_s", 1.5),
    ("rooms.snapshot", "interval_s", "60"),
    ("rooms.snapshot", "interval_s", True),
]


@pytest.mark.parametrize(("kind", "path", "value"), BAD)
def test_invalid_fields(kind: str, path: str, value: Any) -> None:
    with pytest.raises(InvalidEvent):
        parse(set_path(body(kind), path, value))


@pytest.mark.parametrize(("sent", "parsed"), [(None, None), (60, 60), (60.0, 60), (1, 1)])
def test_snapshot_interval_is_optional(sent: float | None, parsed: int | None) -> None:
    fields: dict[str, Any] = {"rooms": []}
    if sent is not None:
        fields["interval_s"] = sent
    event = parse(body("rooms.snapshot", **fields))
    assert isinstance(event, Snapshot)
    assert event.interval_s == parsed


def test_too_many_occupants() -> None:
    occupants = [{"session": f"s{i}", "joined_at": WHEN} for i in range(1001)]
    with pytest.raises(InvalidEvent, match="more than"):
        parse(body("rooms.snapshot", rooms=[{"room": ROOM, "occupants": occupants}]))


def test_upper_case_uuid_is_accepted() -> None:
    event = parse(body("room.created", id=EVENT_ID.upper().replace("EVT_", "evt_")))
    assert event.id.startswith("evt_3F0C")


# --- additions to version 1: the lobby and recordings -------------------------------------------


@pytest.mark.parametrize("reason", ["admitted", "denied", "left", "unknown", "a-new-reason"])
def test_lobby_events_name_the_main_room_and_keep_their_reason(reason: str) -> None:
    joined = parse(body("lobby.joined", room=dict(ROOM), occupant=dict(OCCUPANT)))
    assert isinstance(joined, RoomEvent) and joined.type is EventType.LOBBY_JOINED
    assert joined.room_name == "appointment_clxxx123456789"
    assert joined.occupant is not None and joined.occupant.session == "s_9a0e"
    left = parse(body("lobby.left", room=dict(ROOM), occupant=dict(OCCUPANT), reason=reason))
    assert (left.type, left.reason) == (EventType.LOBBY_LEFT, reason)


def test_lobby_left_needs_a_reason_and_an_occupant() -> None:
    with pytest.raises(InvalidEvent, match="reason"):
        parse(body("lobby.left", room=dict(ROOM), occupant=dict(OCCUPANT)))
    with pytest.raises(InvalidEvent, match="occupant"):
        parse(body("lobby.joined", room=dict(ROOM)))


@pytest.mark.parametrize(
    ("sent", "mode"), [("file", "file"), ("stream", "stream"), ("hologram", None), (None, None)]
)
def test_recording_events(sent: str | None, mode: str | None) -> None:
    recording: dict[str, Any] = {"session": "rec_1"}
    if sent is not None:
        recording["mode"] = sent
    for kind, expected in (
        ("recording.started", EventType.RECORDING_STARTED),
        ("recording.stopped", EventType.RECORDING_STOPPED),
    ):
        event = parse(body(kind, room=dict(ROOM), recording=recording))
        assert isinstance(event, RoomEvent) and event.type is expected
        assert event.recording is not None
        assert (event.recording.session, event.recording.mode) == ("rec_1", mode)
        assert event.occupant is None


def test_recording_events_need_a_recording_session() -> None:
    with pytest.raises(InvalidEvent, match="recording must be an object"):
        parse(body("recording.started", room=dict(ROOM)))
    with pytest.raises(InvalidEvent, match=r"recording\.session"):
        parse(body("recording.stopped", room=dict(ROOM), recording={"mode": "file"}))


def test_snapshots_may_list_the_lobby() -> None:
    knocking = {"session": "k1", "user_id": "patient9", "joined_at": WHEN - 5_000}
    snap = parse(
        body("rooms.snapshot", rooms=[{"room": dict(ROOM), "occupants": [], "lobby": [knocking]}])
    )
    assert isinstance(snap, Snapshot)
    assert snap.rooms[0].lobby == (SnapshotOccupant("k1", "patient9", WHEN - 5_000),)
    plain = parse(body("rooms.snapshot", rooms=[{"room": dict(ROOM), "occupants": []}]))
    assert plain.rooms[0].lobby == ()
    with pytest.raises(InvalidEvent, match=r"rooms\[0\]\.lobby\[0\]\.joined_at"):
        parse(
            body(
                "rooms.snapshot",
                rooms=[{"room": dict(ROOM), "occupants": [], "lobby": [{"session": "k1"}]}],
            )
        )
