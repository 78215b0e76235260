"""The OpenAPI 3.1 document of every endpoint this service serves, and GET /openapi.json.

Request bodies are generated from their types (service/requests.py, service/fields.py);
the rest is written as data so that it states what the code returns (shapes.py, common.py,
errors.py): operations, parameters, responses and the error codes of each status.
tests/api/test_openapi.py holds real responses against it.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.api import openapi_console
from service.api.common import DEFAULT_PAGE, MAX_PAGE, JSONResponse
from service.api.middleware import MAX_BODY_BYTES
from service.api.prosody import EVENT_SYNC_KINDS, MAX_EVENT_BODY
from service.api.video_calls import MAX_REF_LENGTH
from service.domain.model import Action, AppointmentStatus, CallStatus, EndReason, Missing, Role
from service.fields import APPOINTMENT_ID_REGEX
from service.requests import REQUEST_MODELS
from service.webhooks import messages as webhook_messages
from service.webhooks import outbox

JSON = dict[str, Any]

CALL_STATUSES: Final = [s.value for s in CallStatus]
APPOINTMENT_STATUSES: Final = [s.value for s in AppointmentStatus]
ACTIONS: Final = [a.value for a in Action]

# shapes.iso(): ISO-8601 in UTC, always with milliseconds and "Z".
ISO_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
DATE_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
TIME_PATTERN: Final = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
ID_PATTERN: Final = r"^[A-Za-z0-9_.:@-]{1,128}$"
# An appointment id names a Jitsi room (service/fields.py).
APPOINTMENT_ID_PATTERN: Final = APPOINTMENT_ID_REGEX


def _schema(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: JSON) -> JSON:
    return {"anyOf": [schema, {"type": "null"}]}


def _string(**extra: Any) -> JSON:
    return {"type": "string", **extra}


def _timestamp(description: str, *, nullable: bool = True) -> JSON:
    if not nullable:
        return _string(format="date-time", pattern=ISO_PATTERN, description=description)
    return {
        "type": ["string", "null"],
        "format": "date-time",
        "pattern": ISO_PATTERN,
        "description": f"{description}; null until it happens",
    }


def _object(properties: JSON, *, required: list[str] | None = None, **extra: Any) -> JSON:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        **extra,
    }


def _json(schema: JSON) -> JSON:
    return {"application/json": {"schema": schema}}


def _ok(description: str, schema: JSON) -> JSON:
    return {"description": description, "content": _json(schema)}


def _error(description: str, codes: list[str], *, current_status: list[str] | None = None) -> JSON:
    """A `{"message", "error"}` response whose `error` is one of `codes`."""
    properties: JSON = {
        "message": _string(description="Human-readable; do not parse"),
        "error": _string(enum=codes, description="Machine-readable code"),
    }
    required = ["message", "error"]
    if current_status is not None:
        properties["currentStatus"] = _string(
            enum=current_status, description="The status that refused the request"
        )
    schema = _object(properties, required=required, additionalProperties=False)
    return {"description": description, "content": _json(schema)}


# --- responses every operation of a kind shares ------------------------------------------

AUTH_CODES: Final = ["missing_token", "invalid_token", "expired_token", "revoked_token"]
UNAUTHORIZED: Final = _error(
    "Missing, malformed, invalid, expired or revoked ID token, or a disabled account",
    [*AUTH_CODES, "user_disabled"],
)
ADMIN_UNAUTHORIZED: Final = _error("Missing admin key", ["missing_token"])
ADMIN_FORBIDDEN: Final = _error("Wrong admin key", ["invalid_admin_key"])
# The admin API answers 404 for everything while ADMIN_API_KEY is unset.
ADMIN_DISABLED: Final = _error(
    "The admin API is disabled (ADMIN_API_KEY unset)", ["admin_api_disabled"]
)
UNAVAILABLE: Final = _error(
    "The database, or Firebase's certificates, cannot be reached; retry later",
    ["database_unavailable", "auth_unavailable"],
)
ADMIN_UNAVAILABLE: Final = _error(
    "The database cannot be reached; retry later", ["database_unavailable"]
)
RETRY_AFTER: Final = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
UNAVAILABLE["headers"] = RETRY_AFTER
ADMIN_UNAVAILABLE["headers"] = RETRY_AFTER
INACTIVE: Final = _error("The caller's account is unknown or inactive", ["account_inactive"])
TOO_LARGE: Final = _error(f"Request body over {MAX_BODY_BYTES} bytes", ["payload_too_large"])
# A {ref} holding an encoded "/" no longer matches the route: the router's own 404.
ROUTE_NOT_FOUND: Final = "not_found"

BODY_CODES: Final = ["invalid_json", "bad_request"]  # bad_request: unreadable Content-Length
PAGING_CODES: Final = ["invalid_query", "invalid_cursor"]


def _participant_responses(ok: JSON) -> JSON:
    """200, 401, 403 and 503 of an endpoint for an appointment's participants."""
    return {
        "200": ok,
        "401": UNAUTHORIZED,
        "403": _error(
            "The caller is not a participant (the same answer when no such appointment or call "
            "exists), or an account is inactive",
            ["not_participant", "account_inactive"],
        ),
        "503": UNAVAILABLE,
    }


def _ref_not_found(codes: list[str]) -> JSON:
    return _error("No such appointment or video call", [*codes, ROUTE_NOT_FOUND])


# --- parameters ---------------------------------------------------------------------------

REF_PARAMETER: Final = {
    "name": "ref",
    "in": "path",
    "required": True,
    "description": "The appointment id or the video call's id (frontends send either)",
    "schema": _string(minLength=1, maxLength=MAX_REF_LENGTH, pattern="^[^/]+$"),
    "examples": {"appointment": {"value": "clxxx123456789"}},
}
STATUS_QUERY: Final = {
    "name": "status",
    "in": "query",
    "required": False,
    "description": "Only calls in this status (empty means any)",
    "schema": _string(enum=CALL_STATUSES),
}
LIMIT_QUERY: Final = {
    "name": "limit",
    "in": "query",
    "required": False,
    "description": f"Page size, default {DEFAULT_PAGE}",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
}
CURSOR_QUERY: Final = {
    "name": "cursor",
    "in": "query",
    "required": False,
    "description": "Opaque: the `nextCursor` of the previous page",
    "schema": _string(),
}


def _date_query(name: str, description: str) -> JSON:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": _string(format="date", pattern=DATE_PATTERN),
    }


def _id_parameter(name: str, description: str, pattern: str = ID_PATTERN) -> JSON:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": _string(pattern=pattern),
    }


# --- schemas ------------------------------------------------------------------------------

VIDEO_CALL_PROPERTIES: Final[JSON] = {
    "id": _string(),
    "appointmentId": _string(),
    "roomName": _string(),
    "status": _schema("CallStatus"),
    "startedAt": _timestamp("When the call started"),
    "endedAt": _timestamp("When the call ended"),
    "duration": {
        "type": ["integer", "null"],
        "minimum": 0,
        "description": "Seconds, once the call has ended",
    },
    "doctorJoinedAt": _timestamp("The doctor's first join"),
    "patientJoinedAt": _timestamp("The patient's first join"),
    "doctorWaitSeconds": {
        "type": ["integer", "null"],
        "minimum": 0,
        "description": "From the doctor's first presence (room or lobby) to the start; for a "
        "NO_SHOW, to their last departure; null while the call has neither started nor ended",
    },
    "patientWaitSeconds": {
        "type": ["integer", "null"],
        "minimum": 0,
        "description": "From the patient's first presence (room or lobby) to the start; for "
        "a NO_SHOW, to their last departure; null while the call has neither started nor ended",
    },
    "recordings": {
        "type": "array",
        "description": "Each recorder occupant's stay (Jibri), in start order",
        "items": _object(
            {
                "startedAt": _timestamp("The recorder joined", nullable=False),
                "endedAt": _timestamp("The recorder left"),
                "mode": {"type": ["string", "null"], "enum": ["file", "stream", None]},
            },
            additionalProperties=False,
        ),
    },
    "createdAt": _timestamp("Creation", nullable=False),
    "updatedAt": _timestamp("Last change", nullable=False),
}
APPOINTMENT_PROPERTIES: Final[JSON] = {
    "id": _string(),
    "appointmentDate": _string(pattern=DATE_PATTERN, description="In `timezone`"),
    "startTime": _string(pattern=TIME_PATTERN),
    "endTime": _string(pattern=TIME_PATTERN),
    "timezone": _string(description="IANA time zone name"),
    "status": _schema("AppointmentStatus"),
}


def _request_schemas() -> JSON:
    """Request bodies come from their types (service/requests.py), not from this file."""
    _, components = msgspec.json.schema_components(
        REQUEST_MODELS, ref_template="#/components/schemas/{name}"
    )
    return components


SCHEMAS: Final[JSON] = {
    "CallStatus": _string(enum=CALL_STATUSES),
    "AppointmentStatus": _string(enum=APPOINTMENT_STATUSES),
    "VideoCallSummary": _object(
        {
            "id": _string(description="The video call's id"),
            "appointmentId": _string(),
            "roomName": _string(description="`appointment_{appointmentId}`, lower-cased"),
            "status": _schema("CallStatus"),
        },
        additionalProperties=False,
    ),
    "VideoCall": _object(VIDEO_CALL_PROPERTIES, additionalProperties=False),
    "Appointment": _object(APPOINTMENT_PROPERTIES, additionalProperties=False),
    "Participant": _object(
        {
            "uid": _string(),
            "firstName": _string(),
            "lastName": _string(),
            "email": {"type": ["string", "null"]},
            "profileImageUrl": {"type": ["string", "null"]},
        },
        additionalProperties=False,
    ),
    "AppointmentWithParticipants": _object(
        {
            **APPOINTMENT_PROPERTIES,
            "doctor": _nullable(_schema("Participant")),
            "patient": _nullable(_schema("Participant")),
        },
        additionalProperties=False,
    ),
    "VideoCallListItem": _object(
        {**VIDEO_CALL_PROPERTIES, "appointment": _schema("AppointmentWithParticipants")},
        additionalProperties=False,
    ),
    "VideoCallList": _object(
        {
            "message": _string(const="Video calls retrieved successfully"),
            "count": {"type": "integer", "minimum": 0, "description": "Items on this page"},
            "videoCalls": {"type": "array", "items": _schema("VideoCallListItem")},
            "nextCursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last page",
            },
        },
        additionalProperties=False,
    ),
    "TokenGrant": _object(
        {
            "message": _string(
                enum=["Video call initiated successfully", "Token retrieved successfully"]
            ),
            "videoCall": _schema("VideoCallSummary"),
            "jitsiToken": _string(description="HS256 JWT for Jitsi (token_verification)"),
            "meetingLink": _string(
                format="uri", description="`https://{JITSI_DOMAIN}/{roomName}?jwt={jitsiToken}`"
            ),
            "domain": _string(
                description="Jitsi Meet's host (`JITSI_DOMAIN`): the first argument of "
                "`new JitsiMeetExternalAPI(domain, ...)` and where `external_api.js` is served"
            ),
            "userRole": _string(enum=["doctor", "patient"]),
            "isModerator": {"type": "boolean", "description": "True for the doctor only"},
            "expiresIn": _string(description='The token lifetime in words, e.g. "3 hours"'),
            "expiresAt": _timestamp("When jitsiToken expires", nullable=False),
        },
        additionalProperties=False,
    ),
    "StatusUpdated": _object(
        {
            "message": _string(const="Video call status updated successfully"),
            "videoCall": _schema("VideoCall"),
        },
        additionalProperties=False,
    ),
    "Presence": _object(
        {
            "trackedByServer": {
                "type": "boolean",
                "description": "Prosody's events, not client reports, drive this call",
            },
            "doctorPresence": {"type": ["integer", "null"], "minimum": 0},
            "patientPresence": {"type": ["integer", "null"], "minimum": 0},
            "missing": {
                "type": ["string", "null"],
                "enum": [*(m.value for m in Missing), None],
                "description": "Who never joined, for a NO_SHOW call",
            },
            "durationUncertain": {
                "type": "boolean",
                "description": "A repaired session's unknown end bounds the counted overlap "
                "(docs/events.md): the true duration lies within its sessions' bounds",
            },
            "waiting": _nullable(
                _object(
                    {
                        "role": _string(enum=["doctor", "patient"]),
                        "since": _timestamp("The waiting party's first presence", nullable=False),
                    },
                    additionalProperties=False,
                    description="Before the start: the party present while the other is not "
                    "in the room; null otherwise",
                )
            ),
            "lobby": {
                "type": "array",
                "description": "Knocks in Jitsi's lobby, in time order",
                "items": _object(
                    {
                        "role": _string(enum=["doctor", "patient", "other"]),
                        "joinedAt": _timestamp("The knock", nullable=False),
                        "leftAt": _timestamp("Admitted, denied or gone"),
                        "reason": {
                            "type": ["string", "null"],
                            "description": "admitted, denied, left, unknown, or a repair "
                            "(prosody_restart, snapshot_repair, host_silent, sweeper); null "
                            "while knocking",
                        },
                        "repaired": {"type": "boolean"},
                    },
                    additionalProperties=False,
                ),
            },
            "sessions": {
                "type": "array",
                "items": _object(
                    {
                        "role": _string(enum=[r.value for r in Role]),
                        "joinedAt": _timestamp("Join", nullable=False),
                        "leftAt": _timestamp("Leave"),
                        "endReason": {
                            "type": ["string", "null"],
                            "enum": [*(r.value for r in EndReason), None],
                        },
                        "repaired": {"type": "boolean"},
                        "leftAtLatest": _timestamp(
                            "Repaired sessions: the earliest later moment known gone "
                            "(null: unknown, or not repaired)"
                        ),
                    },
                    additionalProperties=False,
                ),
            },
        },
        additionalProperties=False,
        description="What Prosody saw: each role's time in the room and its occupant sessions",
    ),
    "VideoCallDetails": _object(
        {
            "message": _string(const="Video call details retrieved successfully"),
            "appointment": _schema("Appointment"),
            "videoCall": _schema("VideoCall"),
            "doctor": _nullable(_schema("Participant")),
            "patient": _nullable(_schema("Participant")),
            "presence": _schema("Presence"),
        },
        additionalProperties=False,
    ),
    "Stats": _object(
        {
            "message": _string(const="Video call statistics retrieved successfully"),
            "totalCalls": {"type": "integer", "minimum": 0, "description": "COMPLETED calls"},
            "totalDuration": {
                "type": "integer",
                "minimum": 0,
                "description": "Seconds, over COMPLETED calls",
            },
            "avgDuration": {
                "type": ["number", "null"],
                "description": "Seconds, one decimal; null without COMPLETED calls",
            },
            "avgPatientWait": {
                "type": ["number", "null"],
                "description": "Seconds the patient waited, one decimal, over COMPLETED calls "
                "with server-side presence; null without any",
            },
            "byStatus": _object(
                {s: {"type": "integer", "minimum": 0} for s in CALL_STATUSES},
                additionalProperties=False,
            ),
        },
        additionalProperties=False,
    ),
    "User": _object(
        {
            "uid": _string(),
            "firstName": _string(),
            "lastName": _string(),
            "email": {"type": ["string", "null"]},
            "profileImageUrl": {"type": ["string", "null"]},
            "isActive": {"type": "boolean"},
        },
        additionalProperties=False,
    ),
    "UserSaved": _object(
        {"message": _string(const="User saved"), "user": _schema("User")},
        additionalProperties=False,
    ),
    "AppointmentRecord": _object(
        {
            "id": _string(),
            "doctorUid": _string(),
            "patientUid": _string(),
            "appointmentDate": _string(pattern=DATE_PATTERN),
            "startTime": _string(pattern=TIME_PATTERN),
            "endTime": _string(pattern=TIME_PATTERN),
            "timezone": _string(),
            "status": _schema("AppointmentStatus"),
        },
        additionalProperties=False,
    ),
    "AppointmentSaved": _object(
        {
            "message": _string(const="Appointment saved"),
            "appointment": _schema("AppointmentRecord"),
        },
        additionalProperties=False,
    ),
    "Health": _object({"status": _string(const="ok")}, additionalProperties=False),
    "Ready": _object({"status": _string(const="ready")}, additionalProperties=False),
    "NotReady": _object(
        {
            "status": _string(const="unavailable"),
            "message": _string(),
            "error": _string(const="database_unavailable"),
        },
        additionalProperties=False,
    ),
    "EventSyncAccepted": _object(
        {
            "status": _string(const="ok"),
            "duplicate": {"type": "boolean", "description": "Already received before"},
        },
        additionalProperties=False,
    ),
    "Error": _object(
        {
            "message": _string(),
            "error": _string(),
            "currentStatus": _string(),
        },
        required=["message", "error"],
        additionalProperties=False,
        description="Every error; 500 carries only a generic message (internal_error)",
    ),
}


def _body(name: str) -> JSON:
    return {"required": True, "content": _json(_schema(name))}


FIREBASE: Final[list[JSON]] = [{"firebaseIdToken": []}]
ADMIN: Final[list[JSON]] = [{"adminKey": []}]

PATHS: Final[JSON] = {
    "/healthz": {
        "get": {
            "operationId": "healthz",
            "summary": "Liveness: the process is up",
            "tags": ["health"],
            "security": [],
            "responses": {"200": _ok("Up", _schema("Health"))},
        }
    },
    "/readyz": {
        "get": {
            "operationId": "readyz",
            "summary": "Readiness: the database takes a write",
            "tags": ["health"],
            "security": [],
            "responses": {
                "200": _ok("Ready", _schema("Ready")),
                "503": _ok(
                    "The database cannot take a write (down, full or read-only)",
                    _schema("NotReady"),
                ),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "tags": ["health"],
            "security": [],
            "responses": {"200": _ok("OpenAPI 3.1 document", {"type": "object"})},
        }
    },
    "/api/video-calls": {
        "get": {
            "operationId": "listVideoCalls",
            "summary": "The caller's video calls (as doctor or patient), newest first",
            "tags": ["video calls"],
            "security": FIREBASE,
            "parameters": [STATUS_QUERY, LIMIT_QUERY, CURSOR_QUERY],
            "responses": {
                "200": _ok("One page", _schema("VideoCallList")),
                "403": INACTIVE,
                "400": _error("Bad status, limit or cursor", PAGING_CODES),
                "401": UNAUTHORIZED,
                "503": UNAVAILABLE,
            },
        }
    },
    "/api/video-calls/initiate": {
        "post": {
            "operationId": "initiateVideoCall",
            "summary": "Create the appointment's call if missing and grant the caller a token",
            "description": "The appointment must be CONFIRMED or IN_PROGRESS and both accounts "
            "active. A FAILED call goes back to SCHEDULED (a retry).",
            "tags": ["video calls"],
            "security": FIREBASE,
            "requestBody": _body("InitiateRequest"),
            "responses": {
                **_participant_responses(_ok("A token for the caller", _schema("TokenGrant"))),
                "400": _error(
                    "Malformed body, or the appointment is not CONFIRMED/IN_PROGRESS "
                    "(then with currentStatus)",
                    [
                        *BODY_CODES,
                        "missing_appointment_id",
                        "invalid_body",
                        "invalid_id",
                        "appointment_not_active",
                    ],
                    current_status=APPOINTMENT_STATUSES,
                ),
                "409": _error(
                    "The call is COMPLETED, CANCELLED or NO_SHOW (with currentStatus), or "
                    "`room_conflict`: an appointment stored before ids differing only in case "
                    "were refused, whose room another one holds",
                    ["call_closed", "room_conflict"],
                    current_status=CALL_STATUSES,
                ),
                "413": TOO_LARGE,
            },
        }
    },
    "/api/video-calls/stats": {
        "get": {
            "operationId": "videoCallStats",
            "summary": "Statistics of the caller's calls as doctor",
            "tags": ["video calls"],
            "security": FIREBASE,
            "parameters": [
                _date_query("from", "Appointments on or after this date"),
                _date_query("to", "Appointments on or before this date"),
            ],
            "responses": {
                "200": _ok("Statistics", _schema("Stats")),
                "403": INACTIVE,
                "400": _error("from/to is not YYYY-MM-DD", ["invalid_query"]),
                "401": UNAUTHORIZED,
                "503": UNAVAILABLE,
            },
        }
    },
    "/api/video-calls/token/{ref}": {
        "get": {
            "operationId": "videoCallToken",
            "summary": "A fresh token for an initiated call",
            "tags": ["video calls"],
            "security": FIREBASE,
            "parameters": [REF_PARAMETER],
            "responses": {
                **_participant_responses(_ok("A token for the caller", _schema("TokenGrant"))),
                "400": _error(
                    "The ref is not a valid id (1-128 of A-Z a-z 0-9 _ . : @ -)", ["invalid_id"]
                ),
                "404": _ref_not_found(["video_call_not_found", "appointment_not_found"]),
                "409": _error(
                    "The call is COMPLETED, CANCELLED, FAILED or NO_SHOW",
                    ["call_closed"],
                    current_status=CALL_STATUSES,
                ),
            },
        }
    },
    "/api/video-calls/{ref}/status": {
        "patch": {
            "operationId": "updateVideoCallStatus",
            "summary": "Report join, start, end, cancel or failed",
            "description": "A repeat of a report that already took effect is a no-op (200).",
            "tags": ["video calls"],
            "security": FIREBASE,
            "parameters": [REF_PARAMETER],
            "requestBody": _body("StatusRequest"),
            "responses": {
                **_participant_responses(_ok("The call afterwards", _schema("StatusUpdated"))),
                "400": _error(
                    "Malformed ref or body, or an unknown action",
                    [*BODY_CODES, "invalid_id", "missing_action", "unknown_action"],
                ),
                "404": _ref_not_found(["video_call_not_found"]),
                "403": _error(
                    "The caller is not a participant, or the caller's account is inactive",
                    ["not_participant", "account_inactive"],
                ),
                "409": _error(
                    "The status rules refuse this transition",
                    ["invalid_transition"],
                    current_status=[*CALL_STATUSES, "UNKNOWN"],
                ),
                "413": TOO_LARGE,
            },
        }
    },
    "/api/video-calls/{ref}": {
        "get": {
            "operationId": "videoCallDetails",
            "summary": "The call, its appointment and both participants",
            "tags": ["video calls"],
            "security": FIREBASE,
            "parameters": [REF_PARAMETER],
            "responses": {
                **_participant_responses(_ok("Details", _schema("VideoCallDetails"))),
                "400": _error(
                    "The ref is not a valid id (1-128 of A-Z a-z 0-9 _ . : @ -)", ["invalid_id"]
                ),
                "404": _ref_not_found(["video_call_not_found", "appointment_not_found"]),
                "403": _error(
                    "The caller is not a participant, or the caller's account is inactive",
                    ["not_participant", "account_inactive"],
                ),
                "405": _error(
                    "ref `initiate`: /api/video-calls/initiate is a path of its own (POST only)",
                    ["method_not_allowed"],
                ),
            },
        }
    },
    "/api/admin/users/{uid}": {
        "put": {
            "operationId": "upsertUser",
            "summary": "Create or replace a user (idempotent)",
            "tags": ["admin"],
            "security": ADMIN,
            "parameters": [_id_parameter("uid", "The Firebase uid")],
            "requestBody": _body("UserUpsert"),
            "responses": {
                "200": _ok("Saved", _schema("UserSaved")),
                "400": _error("Malformed uid or body", [*BODY_CODES, "invalid_id", "invalid_body"]),
                "401": ADMIN_UNAUTHORIZED,
                "403": ADMIN_FORBIDDEN,
                "404": _error(
                    "The admin API is disabled, or the uid holds a '/'",
                    ["admin_api_disabled", ROUTE_NOT_FOUND],
                ),
                "413": TOO_LARGE,
                "503": ADMIN_UNAVAILABLE,
            },
        }
    },
    "/api/admin/appointments/{id}": {
        "put": {
            "operationId": "upsertAppointment",
            "summary": "Create or replace an appointment (idempotent)",
            "tags": ["admin"],
            "security": ADMIN,
            "parameters": [
                _id_parameter(
                    "id", "The appointment id (it names the Jitsi room)", APPOINTMENT_ID_PATTERN
                )
            ],
            "requestBody": _body("AppointmentUpsert"),
            "responses": {
                "200": _ok("Saved", _schema("AppointmentSaved")),
                "400": _error(
                    "Malformed id or body, or `unknown_user`: doctorUid or patientUid names a "
                    "user not yet created with PUT /api/admin/users/{uid}",
                    [*BODY_CODES, "invalid_id", "invalid_body", "unknown_user"],
                ),
                "401": ADMIN_UNAUTHORIZED,
                "403": ADMIN_FORBIDDEN,
                "404": _error(
                    "The admin API is disabled, or the id holds a '/'",
                    ["admin_api_disabled", ROUTE_NOT_FOUND],
                ),
                "409": _error(
                    "Another stored appointment's id differs from this one only in letter case: "
                    "the two would share a Jitsi room",
                    ["room_conflict"],
                ),
                "413": TOO_LARGE,
                "503": ADMIN_UNAVAILABLE,
            },
        }
    },
    "/api/admin/video-calls": {
        "get": {
            "operationId": "adminListVideoCalls",
            "summary": "Every video call, or those in one status, newest first",
            "tags": ["admin"],
            "security": ADMIN,
            "parameters": [STATUS_QUERY, LIMIT_QUERY, CURSOR_QUERY],
            "responses": {
                "200": _ok("One page", _schema("VideoCallList")),
                "400": _error("Bad status, limit or cursor", PAGING_CODES),
                "401": ADMIN_UNAUTHORIZED,
                "403": ADMIN_FORBIDDEN,
                "404": ADMIN_DISABLED,
                "503": ADMIN_UNAVAILABLE,
            },
        }
    },
}

_EVENT_ROOM: Final[JSON] = {
    "type": "object",
    "required": ["name", "meeting_id"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255},
        "jid": {"type": "string"},
        "meeting_id": {"type": "string", "minLength": 1, "maxLength": 128},
    },
}
_EVENT_OCCUPANT: Final[JSON] = {
    "type": "object",
    "required": ["session"],
    "properties": {
        "session": {"type": "string", "minLength": 1, "maxLength": 128},
        "user_id": {"type": ["string", "null"]},
        "moderator": {"type": ["boolean", "null"]},
        "affiliation": {"type": ["string", "null"]},
        "role": {"type": ["string", "null"]},
    },
}
# Contract version 1 (docs/events.md); which fields each `type` needs is checked by the parser.
EVENT_BODY: Final = {
    "required": True,
    "description": "One event of contract version 1 (docs/events.md)",
    "content": _json(
        {
            "type": "object",
            "required": ["version", "id", "type", "occurred_at", "source"],
            "properties": {
                "version": {"const": 1},
                "id": {"type": "string", "pattern": "^evt_[0-9a-fA-F-]{36}$"},
                "type": {
                    "enum": [
                        "prosody.started",
                        "room.created",
                        "occupant.joined",
                        "occupant.left",
                        "room.destroyed",
                        "rooms.snapshot",
                    ]
                },
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
                "room": _EVENT_ROOM,
                "occupant": _EVENT_OCCUPANT,
                "reason": {"type": ["string", "null"]},
                "interval_s": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 86400,
                    "description": "rooms.snapshot, optional: the module's snapshot interval (s)",
                },
                "rooms": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "room": _EVENT_ROOM,
                            "occupants": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["session", "joined_at"],
                                    "properties": {
                                        "session": {"type": "string"},
                                        "user_id": {"type": ["string", "null"]},
                                        "joined_at": {"type": "integer"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    ),
}
EVENT_SYNC_BODY: Final = {
    "required": True,
    "description": "jitsi-contrib event_sync's payload (times in whole Unix seconds)",
    "content": _json(
        {
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
    ),
}


def _event_sync(kind: str) -> JSON:
    return {
        "post": {
            "operationId": "eventSync" + "".join(p.title() for p in kind.split("/")),
            "summary": f"Prosody's stock event_sync module: {kind}",
            "tags": ["events"],
            "security": [{"eventSyncToken": []}],
            "requestBody": EVENT_SYNC_BODY,
            "responses": {
                "200": _ok("Stored (or a repeat)", _schema("EventSyncAccepted")),
                "400": _error("Not a valid event", ["invalid_event", "bad_request"]),
                "401": _error("Missing token", ["missing_token"]),
                "403": _error("Wrong token", ["invalid_token"]),
                "404": _error(
                    "The receiver is disabled (EVENT_SYNC_TOKEN unset)", ["receiver_disabled"]
                ),
                "413": TOO_LARGE,
                "503": ADMIN_UNAVAILABLE,
            },
        }
    }


PATHS.update(
    {
        "/api/prosody/events": {
            "post": {
                "operationId": "prosodyEvents",
                "summary": "Signed room events (contract version 1) from the Prosody module",
                "description": "Standard Webhooks signature over the raw body, checked before "
                "parsing; a rejected request stores nothing.",
                "tags": ["events"],
                "security": [{"webhookSignature": []}],
                "requestBody": EVENT_BODY,
                "responses": {
                    "204": {"description": "Stored (or a repeat)"},
                    "400": _error(
                        "Not a valid event, or webhook-id differs from the event id",
                        ["invalid_event", "bad_request"],
                    ),
                    "401": _error("Bad or stale signature", ["invalid_signature"]),
                    "404": _error(
                        "The receiver is disabled (PROSODY_EVENTS_SECRET unset)",
                        ["receiver_disabled"],
                    ),
                    "413": _error(
                        f"Request body over {MAX_EVENT_BODY} bytes", ["payload_too_large"]
                    ),
                    "503": ADMIN_UNAVAILABLE,
                },
            }
        },
        **{f"/api/event-sync/events/{kind}": _event_sync(kind) for kind in EVENT_SYNC_KINDS},
    }
)

# --- GET /api/admin/prosody-hosts (silent and restarted Prosody hosts) ------------------------

SCHEMAS["ProsodyHostList"] = _object(
    {
        "message": _string(const="Prosody hosts retrieved successfully"),
        "count": {"type": "integer", "minimum": 0},
        "hosts": {
            "type": "array",
            "items": _object(
                {
                    "host": _string(description="The MUC component's domain"),
                    "bootId": {"type": ["string", "null"], "description": "Its current boot"},
                    "lastHeardAt": _timestamp("Newest event or snapshot", nullable=False),
                    "snapshotInterval": {
                        "type": ["integer", "null"],
                        "minimum": 1,
                        "description": "Seconds, as its current boot announced (null: none)",
                    },
                    "silent": {
                        "type": "boolean",
                        "description": "Unheard for three snapshot intervals: its open "
                        "sessions are closed as host_silent",
                    },
                },
                additionalProperties=False,
            ),
        },
    },
    additionalProperties=False,
)
PATHS["/api/admin/prosody-hosts"] = {
    "get": {
        "operationId": "adminListProsodyHosts",
        "summary": "Every Prosody host heard from: boot, last heard, snapshot interval, silent",
        "tags": ["admin"],
        "security": ADMIN,
        "responses": {
            "200": _ok("Hosts, by name", _schema("ProsodyHostList")),
            "401": ADMIN_UNAUTHORIZED,
            "403": ADMIN_FORBIDDEN,
            "404": ADMIN_DISABLED,
            "503": ADMIN_UNAVAILABLE,
        },
    }
}

# --- webhooks to the clinic's backend (service/webhooks; README "Webhooks") ----------------

WEBHOOK_STATUSES: Final = list(outbox.STATUSES)
SCHEMAS.update(
    {
        "WebhookMessage": _object(
            {
                "id": _string(description="The message's `webhook-id`, the same on every retry"),
                "type": _string(enum=list(webhook_messages.ALL_TYPES)),
                "videoCallId": {"type": ["string", "null"]},
                "appointmentId": {"type": ["string", "null"]},
                "sequence": {"type": "integer", "minimum": 0},
                "status": _string(enum=WEBHOOK_STATUSES),
                "attempts": {"type": "integer", "minimum": 0},
                "lastHttpStatus": {
                    "type": ["integer", "null"],
                    "description": "The receiver's answer to the last attempt; null if none "
                    "came (timeout, connection error) or no attempt was made",
                },
                "lastError": {"type": ["string", "null"], "description": "timeout, ConnectError…"},
                "nextAttemptAt": _timestamp("When a pending message is attempted next"),
                "createdAt": _timestamp("When the change it tells happened", nullable=False),
                "deliveredAt": _timestamp("When the receiver answered 2xx"),
            },
            additionalProperties=False,
        ),
        "WebhookMessageList": _object(
            {
                "message": _string(const="Webhook messages retrieved successfully"),
                "count": {"type": "integer", "minimum": 0},
                "messages": {"type": "array", "items": _schema("WebhookMessage")},
                "nextCursor": {"type": ["string", "null"]},
            },
            additionalProperties=False,
        ),
        "WebhookMessageQueued": _object(
            {
                "message": _string(const="Webhook message queued"),
                "webhookMessage": _schema("WebhookMessage"),
            },
            additionalProperties=False,
        ),
        "WebhookBody": _object(
            {
                "type": _string(enum=list(webhook_messages.ALL_TYPES)),
                "timestamp": _timestamp("When the message was created", nullable=False),
                "data": _object(
                    {
                        "appointmentId": _string(),
                        "sequence": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "Strictly increasing over one call's messages in "
                            "the order they were created: drop one older than the last you kept",
                        },
                        "videoCall": _schema("VideoCall"),
                        "presence": _schema("Presence"),
                        "waiting": _object(
                            {"role": _string(enum=["doctor", "patient"]), "since": _string()},
                            description="call.waiting only",
                        ),
                        "participant": _object(
                            {
                                "role": _string(enum=["doctor", "patient"]),
                                "at": _string(),
                                "reason": {"type": ["string", "null"]},
                            },
                            required=["role", "at"],
                            description="participant.* only; reason on participant.left",
                        ),
                        "recording": _object(
                            {
                                "startedAt": _string(),
                                "endedAt": {"type": ["string", "null"]},
                                "mode": {
                                    "type": ["string", "null"],
                                    "enum": ["file", "stream", None],
                                },
                            },
                            description="recording.* only; endedAt on recording.stopped",
                        ),
                    },
                    required=[],
                    description="Empty for webhook.test",
                ),
            }
        ),
    }
)
_WEBHOOK_LIST_CODES: Final = ["invalid_query", "invalid_cursor"]
PATHS.update(
    {
        "/api/admin/webhooks/messages": {
            "get": {
                "operationId": "adminListWebhookMessages",
                "summary": "Webhook messages to the clinic, or those in one status, newest first",
                "tags": ["admin", "webhooks"],
                "security": ADMIN,
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "description": "Only messages in this status (empty means any)",
                        "schema": _string(enum=WEBHOOK_STATUSES),
                    },
                    LIMIT_QUERY,
                    CURSOR_QUERY,
                ],
                "responses": {
                    "200": _ok("One page", _schema("WebhookMessageList")),
                    "400": _error("Bad status, limit or cursor", _WEBHOOK_LIST_CODES),
                    "401": ADMIN_UNAUTHORIZED,
                    "403": ADMIN_FORBIDDEN,
                    "404": ADMIN_DISABLED,
                    "503": ADMIN_UNAVAILABLE,
                },
            }
        },
        "/api/admin/webhooks/messages/{id}/retry": {
            "post": {
                "operationId": "adminRetryWebhookMessage",
                "summary": "Attempt a failed (or pending) message again now, from attempt one",
                "tags": ["admin", "webhooks"],
                "security": ADMIN,
                "parameters": [_id_parameter("id", "The message id (`msg_...`)")],
                "responses": {
                    "200": _ok("Queued", _schema("WebhookMessageQueued")),
                    "400": _error("Not a valid message id", ["invalid_id"]),
                    "401": ADMIN_UNAUTHORIZED,
                    "403": ADMIN_FORBIDDEN,
                    "404": _error(
                        "No such message, or the admin API is disabled",
                        ["message_not_found", "admin_api_disabled", ROUTE_NOT_FOUND],
                    ),
                    "409": _error("The message was already delivered", ["message_delivered"]),
                    "503": ADMIN_UNAVAILABLE,
                },
            }
        },
    }
)
WEBHOOKS: Final[JSON] = {
    "clinicEvent": {
        "post": {
            "summary": "What the service sends to WEBHOOK_URL",
            "description": "Signed with Standard Webhooks (webhook-id, webhook-timestamp, "
            "webhook-signature: one `v1,` signature per WEBHOOK_SECRET). Answer 2xx to accept; "
            "anything else is retried, 410 stops.",
            "requestBody": {"required": True, "content": _json(_schema("WebhookBody"))},
            "responses": {"200": {"description": "Accepted (any 2xx)"}},
        }
    }
}

# The operator console, its admin views and /metrics (a block of its own).
PATHS.update(openapi_console.PATHS)
SCHEMAS.update(openapi_console.SCHEMAS)

DOCUMENT: Final[JSON] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Video calls",
        "version": "0.1.0",
        "description": "Jitsi video consultations for clinic appointments. Errors are "
        '`{"message", "error"}` JSON; an unexpected failure is 500 with `internal_error` and '
        "a generic message.",
    },
    "paths": PATHS,
    "webhooks": WEBHOOKS,
    "components": {
        # Hand-written response shapes win a name both define (AppointmentStatus, the same enum).
        "schemas": {**_request_schemas(), **SCHEMAS},
        "securitySchemes": {
            "firebaseIdToken": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A Firebase ID token (a dev token under AUTH_MODE=dev)",
            },
            "webhookSignature": {
                "type": "apiKey",
                "in": "header",
                "name": "webhook-signature",
                "description": "Standard Webhooks: webhook-id, webhook-timestamp and "
                "webhook-signature (HMAC-SHA256 with PROSODY_EVENTS_SECRET)",
            },
            "eventSyncToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "EVENT_SYNC_TOKEN, configured in Prosody's event_sync module",
            },
            "adminKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "ADMIN_API_KEY, for the clinic's backend and operators",
            },
            **openapi_console.SECURITY_SCHEMES,
        },
    },
}


async def openapi_json(request: Request) -> Response:
    return JSONResponse(DOCUMENT)


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
