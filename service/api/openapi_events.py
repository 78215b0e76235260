"""The OpenAPI facts of Prosody's two ways in (service/api/prosody.py): signed contract events
and jitsi-contrib's event_sync.

Hand-written, because the parser (service/receiver/parse.py) checks these bodies field by field
rather than through a type; every limit is the parser's own constant. Which fields each `type`
needs is the parser's to check too (docs/events.md), so the schema stays permissive there.
"""

from __future__ import annotations

from typing import Final

from service.api import apidoc as doc
from service.domain.prosody import LOBBY_EVENT_TYPES, RECORDING_EVENT_TYPES, EventType
from service.fields import MAX_ID_CHARS
from service.receiver.parse import (
    EVENT_SYNC_KINDS,
    MAX_INTERVAL_S,
    MAX_NAME_CHARS,
)
from service.receiver.parse import MAX_BODY_BYTES as MAX_EVENT_BODY

# The document has always listed the six types of contract version 1 before its additions
# (lobby and recorder events), which the receiver accepts all the same.
EVENT_TYPES: Final = [
    t.value for t in EventType if t not in LOBBY_EVENT_TYPES | RECORDING_EVENT_TYPES
]
_ROOM: Final[doc.JSON] = {
    "type": "object",
    "required": ["name", "meeting_id"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
        "jid": {"type": "string"},
        "meeting_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS},
    },
}
_OCCUPANT: Final[doc.JSON] = {
    "type": "object",
    "required": ["session"],
    "properties": {
        "session": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS},
        "user_id": {"type": ["string", "null"]},
        "moderator": {"type": ["boolean", "null"]},
        "affiliation": {"type": ["string", "null"]},
        "role": {"type": ["string", "null"]},
    },
}
_SNAPSHOT_OCCUPANT: Final[doc.JSON] = {
    "type": "object",
    "required": ["session", "joined_at"],
    "properties": {
        "session": {"type": "string"},
        "user_id": {"type": ["string", "null"]},
        "joined_at": {"type": "integer"},
    },
}
EVENT: Final[doc.JSON] = {
    "type": "object",
    "required": ["version", "id", "type", "occurred_at", "source"],
    "properties": {
        "version": {"const": 1},
        # Looser than the parser's EVENT_ID (any hex-and-dash run of a UUID's length).
        "id": {"type": "string", "pattern": "^evt_[0-9a-fA-F-]{36}$"},
        "type": {"enum": EVENT_TYPES},
        "occurred_at": {"type": "integer", "description": "ms since the Unix epoch"},
        "source": {
            "type": "object",
            "required": ["host", "boot_id", "seq"],
            "properties": {
                "host": {"type": "string"},
                "boot_id": {"type": "string"},
                "seq": {"type": "integer", "minimum": 0},
            },
        },
        "room": _ROOM,
        "occupant": _OCCUPANT,
        "reason": {"type": ["string", "null"]},
        "interval_s": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_INTERVAL_S,
            "description": "rooms.snapshot, optional: the module's snapshot interval (s)",
        },
        "rooms": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "room": _ROOM,
                    "occupants": {"type": "array", "items": _SNAPSHOT_OCCUPANT},
                },
            },
        },
    },
}
EVENT_SYNC: Final[doc.JSON] = {
    "type": "object",
    "properties": {
        "event_name": {"type": "string"},
        "room_name": {"type": "string"},
        "room_jid": {"type": "string"},
        "is_breakout": {"type": "boolean"},
        "breakout_room_id": {"type": ["string", "null"]},
        "created_at": {"type": "integer"},
        "destroyed_at": {"type": "integer"},
        "active_occupants_count": {"type": "integer"},
        "all_occupants": {"type": "array"},
        "occupant": {
            "type": "object",
            "properties": {
                "occupant_jid": {"type": "string"},
                "joined_at": {"type": "integer"},
                "left_at": {"type": "integer"},
                "name": {"type": ["string", "null"]},
                "id": {"type": ["string", "null"]},
                "email": {"type": ["string", "null"]},
            },
        },
    },
}
SCHEMAS: Final[doc.JSON] = {
    "EventSyncAccepted": {
        "type": "object",
        "properties": {
            "status": doc.string(const="ok"),
            "duplicate": {"type": "boolean", "description": "Already received before"},
        },
        "required": ["status", "duplicate"],
        "additionalProperties": False,
    },
}


def _event_sync(kind: str) -> doc.JSON:
    return {
        "post": {
            "operationId": "eventSync" + "".join(p.title() for p in kind.split("/")),
            "summary": f"Prosody's stock event_sync module: {kind}",
            "tags": ["events"],
            "security": [{"eventSyncToken": []}],
            "requestBody": {
                "required": True,
                "description": "jitsi-contrib event_sync's payload (times in whole Unix seconds)",
                "content": {"application/json": {"schema": EVENT_SYNC}},
            },
            "responses": {
                "200": doc.ok("Stored (or a repeat)", doc.ref("EventSyncAccepted")),
                "400": doc.error(
                    "Not a valid event, or its time is more than EVENT_SYNC_MAX_AGE seconds "
                    "from the server's clock (audited as event.refused)",
                    ["invalid_event", "bad_request", "stale_event", "future_event"],
                ),
                "401": doc.error("Missing token", ["missing_token"]),
                "403": doc.error(
                    "Wrong token, or a peer outside EVENT_SYNC_ALLOWED_NETWORKS or a request "
                    "through a proxy (a forwarding header)",
                    ["invalid_token", "network_not_allowed"],
                ),
                "404": doc.error(
                    "The receiver is disabled (EVENT_SYNC_TOKEN unset)", ["receiver_disabled"]
                ),
                "408": doc.SLOW_BODY,
                "413": doc.TOO_LARGE,
                "503": doc.ADMIN_UNAVAILABLE,
            },
        }
    }


OPERATIONS: Final[doc.JSON] = {
    "/api/prosody/events": {
        "post": {
            "operationId": "prosodyEvents",
            "summary": "Signed room events (contract version 1) from the Prosody module",
            "description": "Standard Webhooks signature over the raw body, checked before "
            "parsing; a rejected request stores nothing.",
            "tags": ["events"],
            "security": [{"webhookSignature": []}],
            "requestBody": {
                "required": True,
                "description": "One event of contract version 1 (docs/events.md)",
                "content": {"application/json": {"schema": EVENT}},
            },
            "responses": {
                "204": {"description": "Stored (or a repeat)"},
                "400": doc.error(
                    "Not a valid event, or webhook-id differs from the event id",
                    ["invalid_event", "bad_request"],
                ),
                "401": doc.error("Bad or stale signature", ["invalid_signature"]),
                "404": doc.error(
                    "The receiver is disabled (PROSODY_EVENTS_SECRET unset)",
                    ["receiver_disabled"],
                ),
                "408": doc.SLOW_BODY,
                "413": doc.error(
                    f"Request body over {MAX_EVENT_BODY} bytes", ["payload_too_large"]
                ),
                "503": doc.BIG_BODY_BUSY,
            },
        }
    },
    **{f"/api/event-sync/events/{kind}": _event_sync(kind) for kind in EVENT_SYNC_KINDS},
}
