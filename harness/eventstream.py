"""Builders for Prosody event streams in both wire formats, signed as the module signs them."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from service.clock import now_s
from service.receiver.signing import sign

HOST = "muc.meet.jitsi"


@dataclass
class Stream:
    """Version-1 events of one Prosody boot, with increasing seq."""

    boot_id: str = field(default_factory=lambda: f"b_{uuid.uuid4().hex[:12]}")
    seq: int = 0

    def event(self, type_: str, at_ms: int, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        return {
            "version": 1,
            "id": f"evt_{uuid.uuid4()}",
            "type": type_,
            "occurred_at": at_ms,
            "source": {"host": HOST, "boot_id": self.boot_id, "seq": self.seq},
            **fields,
        }

    def room(self, name: str, meeting: str) -> dict[str, str]:
        return {"name": name, "jid": f"{name}@{HOST}", "meeting_id": meeting}

    def created(self, name: str, meeting: str, at: int) -> dict[str, Any]:
        return self.event("room.created", at, room=self.room(name, meeting))

    def destroyed(self, name: str, meeting: str, at: int) -> dict[str, Any]:
        return self.event("room.destroyed", at, room=self.room(name, meeting))

    def joined(
        self, name: str, meeting: str, session: str, user: str | None, at: int
    ) -> dict[str, Any]:
        return self.event(
            "occupant.joined",
            at,
            room=self.room(name, meeting),
            occupant={"session": session, "user_id": user},
        )

    def left(
        self, name: str, meeting: str, session: str, user: str | None, at: int, reason: str = "left"
    ) -> dict[str, Any]:
        return self.event(
            "occupant.left",
            at,
            room=self.room(name, meeting),
            occupant={"session": session, "user_id": user},
            reason=reason,
        )

    def snapshot(
        self, at: int, rooms: list[dict[str, Any]], interval_s: int | None = None
    ) -> dict[str, Any]:
        if interval_s is None:
            return self.event("rooms.snapshot", at, rooms=rooms)
        return self.event("rooms.snapshot", at, rooms=rooms, interval_s=interval_s)

    def started(self, at: int) -> dict[str, Any]:
        return self.event("prosody.started", at)


def signed(
    secret: str, event: dict[str, Any], timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    ts = now_s() if timestamp is None else timestamp
    headers = {
        "content-type": "application/json",
        "webhook-id": event["id"],
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, event["id"], ts, body),
    }
    return body, headers


def consultation(
    stream: Stream, room: str, doctor: str, patient: str, t0: int
) -> list[dict[str, Any]]:
    """Doctor waits 60 s, patient joins, they talk 10 min, patient leaves, doctor leaves."""
    meeting = "m1"
    return [
        stream.created(room, meeting, t0),
        stream.joined(room, meeting, "s-doc", doctor, t0 + 1_000),
        stream.joined(room, meeting, "s-pat", patient, t0 + 61_000),
        stream.left(room, meeting, "s-pat", patient, t0 + 661_000),
        stream.left(room, meeting, "s-doc", doctor, t0 + 671_000),
        stream.destroyed(room, meeting, t0 + 671_500),
    ]


def event_sync_consultation(
    room: str, doctor: str, patient: str, t0_s: int
) -> list[tuple[str, dict[str, Any]]]:
    """The same consultation as stock event_sync sends it (whole seconds)."""
    jid = f"{room}@{HOST}"

    def occupant(nick: str, user: str, joined: int, left: int | None = None) -> dict[str, Any]:
        item: dict[str, Any] = {
            "occupant_jid": f"{jid}/{nick}",
            "name": nick,
            "id": user,
            "email": None,
            "joined_at": joined,
        }
        if left is not None:
            item["left_at"] = left
        return item

    base = {"room_name": room, "room_jid": jid, "is_breakout": False, "breakout_room_id": None}
    return [
        ("room/created", {**base, "event_name": "muc-room-created", "created_at": t0_s}),
        (
            "occupant/joined",
            {
                **base,
                "event_name": "muc-occupant-joined",
                "occupant": occupant("d", doctor, t0_s + 1),
            },
        ),
        (
            "occupant/joined",
            {
                **base,
                "event_name": "muc-occupant-joined",
                "occupant": occupant("p", patient, t0_s + 61),
            },
        ),
        (
            "occupant/left",
            {
                **base,
                "event_name": "muc-occupant-left",
                "occupant": occupant("p", patient, t0_s + 61, t0_s + 661),
            },
        ),
        (
            "occupant/left",
            {
                **base,
                "event_name": "muc-occupant-left",
                "occupant": occupant("d", doctor, t0_s + 1, t0_s + 671),
            },
        ),
        (
            "room/destroyed",
            {
                **base,
                "event_name": "muc-room-destroyed",
                "created_at": t0_s,
                "destroyed_at": t0_s + 672,
                "all_occupants": [],
            },
        ),
    ]
