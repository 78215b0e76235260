"""Tests for service.receiver.parse.parse_event_sync, on the payloads of event_sync's README."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.domain.model import CallStatus
from service.domain.presence import Params, derive_call
from service.domain.prosody import EventType, RoomEvent
from service.receiver.parse import InvalidEvent, parse_event_sync

ROOM_JID = "Appointment_A1@conference.meet.example.com"
OCCUPANT: dict[str, Any] = {
    "name": "James Barrow",
    "email": "j.barrow@domain.com",
    "id": "doctor-uid",
    "occupant_jid": "14f01c40@meet.example.com/OWhl8jSh",
    "joined_at": 1825823996,
}
BASE = {"room_name": "Appointment_A1", "room_jid": ROOM_JID, "is_breakout": False}


def created(at: int = 1825823990) -> dict[str, Any]:
    return {**BASE, "event_name": "muc-room-created", "created_at": at}


def destroyed(at: int = 1825824035) -> dict[str, Any]:
    return {
        **BASE,
        "event_name": "muc-room-destroyed",
        "created_at": 1825823990,
        "destroyed_at": at,
        "all_occupants": [{**OCCUPANT, "left_at": 1825824035}],
    }


def joined(occupant: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        **BASE,
        "event_name": "muc-occupant-joined",
        "active_occupants_count": 1,
        "occupant": occupant or OCCUPANT,
    }


def left(occupant: dict[str, Any] | None = None, left_at: int = 1825824035) -> dict[str, Any]:
    return {
        **BASE,
        "event_name": "muc-occupant-left",
        "active_occupants_count": 0,
        "occupant": {**(occupant or OCCUPANT), "left_at": left_at},
    }


def parse(kind: str, data: dict[str, Any]) -> RoomEvent:
    return parse_event_sync(kind, json.dumps(data).encode())


def test_room_created() -> None:
    event = parse("room/created", created())
    assert event.type is EventType.ROOM_CREATED
    assert event.occurred_at == 1825823990_000
    assert event.room_name == "appointment_a1"
    assert event.host == "conference.meet.example.com"
    assert (event.boot_id, event.seq, event.meeting_id, event.occupant) == (None, None, None, None)
    assert event.id.startswith("es_")


def test_room_destroyed_uses_destroyed_at() -> None:
    event = parse("room/destroyed", destroyed())
    assert (event.type, event.occurred_at) == (EventType.ROOM_DESTROYED, 1825824035_000)


def test_joined_and_left_of_one_session_share_the_session_id() -> None:
    join = parse("occupant/joined", joined())
    leave = parse("occupant/left", left())
    assert join.occupant is not None and leave.occupant is not None
    assert join.occupant.session == leave.occupant.session
    assert join.occupant.user_id == "doctor-uid"
    assert (join.occurred_at, leave.occurred_at) == (1825823996_000, 1825824035_000)
    assert leave.reason == "left"
    assert join.id != leave.id


def test_ids_are_deterministic_and_distinguish_events() -> None:
    assert parse("occupant/joined", joined()).id == parse("occupant/joined", joined()).id
    # A retry may differ in fields that do not identify the event.
    retry = {**joined(), "active_occupants_count": 7}
    assert parse("occupant/joined", retry).id == parse("occupant/joined", joined()).id
    reconnect = joined({**OCCUPANT, "joined_at": OCCUPANT["joined_at"] + 60})
    assert parse("occupant/joined", reconnect).id != parse("occupant/joined", joined()).id
    other_room = {**joined(), "room_jid": "appointment_b2@conference.meet.example.com"}
    assert parse("occupant/joined", other_room).id != parse("occupant/joined", joined()).id
    assert parse("room/created", created()).id != parse("room/created", created(1825823991)).id
    ids = {
        parse("room/created", created()).id,
        parse("room/destroyed", destroyed()).id,
        parse("occupant/joined", joined()).id,
        parse("occupant/left", left()).id,
    }
    assert len(ids) == 4


def test_user_info_may_be_missing_or_numeric() -> None:
    anonymous = {k: v for k, v in OCCUPANT.items() if k not in ("id", "name", "email")}
    event = parse("occupant/joined", joined(anonymous))
    assert event.occupant is not None and event.occupant.user_id is None
    numeric = parse("occupant/joined", joined({**OCCUPANT, "id": 42}))
    assert numeric.occupant is not None and numeric.occupant.user_id == "42"


def test_float_seconds_from_lua_are_accepted_when_whole() -> None:
    event = parse("room/created", created() | {"created_at": 1825823990.0})
    assert event.occurred_at == 1825823990_000
    with pytest.raises(InvalidEvent):
        parse("room/created", created() | {"created_at": 1825823990.5})


def test_breakout_rooms_count_for_the_main_room_under_their_own_meeting() -> None:
    data = joined() | {"is_breakout": True, "breakout_room_id": "B-1"}
    event = parse("occupant/joined", data)
    assert event.room_name == "appointment_a1"
    assert event.meeting_id == "breakout_b-1"
    assert event.occupant is not None
    assert event.occupant.session != parse("occupant/joined", joined()).occupant.session  # type: ignore[union-attr]


def test_room_name_without_jid() -> None:
    data = {k: v for k, v in created().items() if k != "room_jid"}
    event = parse("room/created", data)
    assert (event.room_name, event.host) == ("appointment_a1", "event_sync")


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("room/renamed", created()),
        ("room/created", {**created(), "created_at": "1825823990"}),
        ("room/created", {k: v for k, v in created().items() if k != "created_at"}),
        ("room/created", {**created(), "created_at": 1825823990_000}),  # ms, not seconds
        ("room/created", {**created(), "room_jid": "no-at-sign"}),
        ("room/created", {"event_name": "muc-room-created", "created_at": 1825823990}),
        ("room/destroyed", {k: v for k, v in destroyed().items() if k != "destroyed_at"}),
        ("occupant/joined", {**joined(), "occupant": None}),
        ("occupant/joined", joined({k: v for k, v in OCCUPANT.items() if k != "occupant_jid"})),
        ("occupant/joined", joined({**OCCUPANT, "id": ["x"]})),
        ("occupant/left", joined()),  # no left_at
        ("occupant/left", left(left_at=OCCUPANT["joined_at"] - 1)),
        ("occupant/joined", {**joined(), "is_breakout": True}),  # no breakout_room_id
    ],
)
def test_invalid_event_sync_bodies(kind: str, data: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent):
        parse(kind, data)


def test_malformed_json() -> None:
    with pytest.raises(InvalidEvent):
        parse_event_sync("room/created", b"{nope")


def test_an_event_sync_stream_gives_the_record_in_whole_seconds() -> None:
    doctor = {**OCCUPANT, "occupant_jid": "d@meet/1", "id": "doctor-uid", "joined_at": 1825820000}
    patient = {**OCCUPANT, "occupant_jid": "p@meet/2", "id": "patient-uid", "joined_at": 1825820600}
    events = [
        parse("room/created", created(1825820000)),
        parse("occupant/joined", joined(doctor)),
        parse("occupant/joined", joined(patient)),
        parse("occupant/left", left(patient, left_at=1825821800)),
        parse("occupant/left", left(doctor, left_at=1825821805)),
        parse("room/destroyed", destroyed(1825821805)),
    ]
    record = derive_call(
        events * 2,  # event_sync retries: deduplicated by the derived ids
        [],
        [],
        Params(
            room_name="appointment_a1",
            doctor_uid="doctor-uid",
            patient_uid="patient-uid",
            appointment_end_ms=None,
            call_end_grace_ms=120_000,
            no_show_grace_ms=900_000,
            max_call_ms=4 * 3600_000,
        ),
        now_ms=1825830000_000,
    )
    assert record.status is CallStatus.COMPLETED
    assert (record.started_at, record.ended_at) == (1825820600_000, 1825821800_000)
    assert record.duration == 1200
    assert record.completed_at == 1825821805_000
    assert len(record.sessions) == 2
