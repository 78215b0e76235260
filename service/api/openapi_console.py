"""The OpenAPI block of the operator console, its admin views and /metrics.

Self-contained (its own small helpers) so that it joins the main document with one
`update` in openapi.py, whatever shape that document's own helpers take.
"""

from __future__ import annotations

from typing import Any, Final

from service.api.admin_views import MAX_RANGE_DAYS
from service.domain.attention import Attention
from service.domain.model import AppointmentStatus, CallStatus, Missing, Role

JSON = dict[str, Any]

_ISO: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
_DATE: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIME: Final = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_ID: Final = r"^[A-Za-z0-9_.:@-]{1,128}$"
GROUPS: Final = [g.value for g in Attention]
ADMIN: Final[list[JSON]] = [{"adminKey": []}]


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: JSON, **extra: Any) -> JSON:
    return {"type": "object", "properties": properties, "required": list(properties), **extra}


def _str(**extra: Any) -> JSON:
    return {"type": "string", **extra}


def _time(nullable: bool = True) -> JSON:
    if nullable:
        return {"type": ["string", "null"], "format": "date-time", "pattern": _ISO}
    return _str(format="date-time", pattern=_ISO)


def _int_or_null(**extra: Any) -> JSON:
    return {"type": ["integer", "null"], **extra}


def _num_or_null(**extra: Any) -> JSON:
    return {"type": ["number", "null"], **extra}


def _error(description: str, codes: list[str]) -> JSON:
    schema = _obj(
        {
            "message": _str(description="Human-readable; do not parse"),
            "error": _str(enum=codes, description="Machine-readable code"),
        },
        additionalProperties=False,
    )
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: JSON) -> JSON:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: JSON) -> JSON:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _admin_errors(
    bad_request: str,
    codes: list[str],
    not_found: list[str],
    not_found_description: str = "The admin API is disabled (ADMIN_API_KEY unset)",
) -> JSON:
    return {
        "400": _error(bad_request, codes),
        "401": _error("Missing admin key", ["missing_token"]),
        "403": _error("Wrong admin key", ["invalid_admin_key"]),
        "404": _error(not_found_description, ["admin_api_disabled", *not_found]),
        "503": _error("The database cannot be reached; retry later", ["database_unavailable"]),
    }


DATE_SCHEMA: Final = _str(format="date", pattern=_DATE)
DOCTOR_QUERY: Final = _query("doctor", "Only this doctor's (a uid)", _str(pattern=_ID))

SCHEMAS: Final[JSON] = {
    "ConsolePerson": _obj(
        {"uid": _str(), "name": _str(description="First and last name, or the uid")},
        additionalProperties=False,
    ),
    "ConsoleDayItem": _obj(
        {
            "appointmentId": _str(),
            "appointmentStatus": _str(enum=[s.value for s in AppointmentStatus]),
            "appointmentDate": _str(pattern=_DATE),
            "startTime": _str(pattern=_TIME),
            "endTime": _str(pattern=_TIME),
            "timezone": _str(),
            "startsAt": _time(nullable=False),
            "endsAt": _time(nullable=False),
            "attention": _str(enum=GROUPS, description="The group it is shown in"),
            "doctor": _ref("ConsolePerson"),
            "patient": _ref("ConsolePerson"),
            "present": {
                "type": "array",
                "items": _str(enum=[Role.DOCTOR.value, Role.PATIENT.value]),
                "description": "Who is in the room now",
            },
            "waitingSince": {
                **_time(),
                "description": "While waiting: when the one in the room joined",
            },
            "missing": {
                "type": ["string", "null"],
                "enum": [*(m.value for m in Missing), None],
                "description": "While missed: who did not come",
            },
            "videoCall": {
                "anyOf": [
                    _obj(
                        {
                            "id": _str(),
                            "status": _str(enum=[s.value for s in CallStatus]),
                            "startedAt": _time(),
                            "endedAt": _time(),
                            "duration": _int_or_null(minimum=0),
                            "trackedByServer": {"type": "boolean"},
                        },
                        additionalProperties=False,
                    ),
                    {"type": "null"},
                ],
                "description": "null until someone initiated the call",
            },
        },
        additionalProperties=False,
    ),
    "ConsoleDay": _obj(
        {
            "date": _str(pattern=_DATE),
            "now": _time(nullable=False),
            "doctor": {"type": ["string", "null"]},
            "doctors": {
                "type": "array",
                "items": _ref("ConsolePerson"),
                "description": "Every doctor with an appointment that day (for the filter)",
            },
            "groups": {"type": "array", "items": _str(enum=GROUPS)},
            "counts": _obj({g: {"type": "integer", "minimum": 0} for g in GROUPS}),
            "appointments": {"type": "array", "items": _ref("ConsoleDayItem")},
        },
        additionalProperties=False,
    ),
    "ConsoleCall": _obj(
        {
            "now": _time(nullable=False),
            "videoCall": _obj(
                {
                    "id": _str(),
                    "appointmentId": _str(),
                    "roomName": _str(),
                    "status": _str(enum=[s.value for s in CallStatus]),
                    "startedAt": _time(),
                    "endedAt": _time(),
                    "duration": _int_or_null(minimum=0),
                    "doctorJoinedAt": _time(),
                    "patientJoinedAt": _time(),
                    "createdAt": _time(nullable=False),
                    "updatedAt": _time(nullable=False),
                    "trackedByServer": {"type": "boolean"},
                    "doctorPresence": _int_or_null(description="Seconds in the room"),
                    "patientPresence": _int_or_null(description="Seconds in the room"),
                    "missing": {"type": ["string", "null"]},
                    "openSessions": {"type": "integer"},
                    # As in VideoCall (GET /api/video-calls/{ref}), which says more.
                    "doctorWaitSeconds": _int_or_null(minimum=0),
                    "patientWaitSeconds": _int_or_null(minimum=0),
                    "recordings": {"type": "array", "items": {"type": "object"}},
                },
                additionalProperties=False,
            ),
            "appointment": _obj(
                {
                    "id": _str(),
                    "appointmentDate": _str(pattern=_DATE),
                    "startTime": _str(pattern=_TIME),
                    "endTime": _str(pattern=_TIME),
                    "timezone": _str(),
                    "status": _str(enum=[s.value for s in AppointmentStatus]),
                    "startsAt": _time(nullable=False),
                    "endsAt": _time(nullable=False),
                },
                additionalProperties=False,
            ),
            "doctor": _ref("ConsolePerson"),
            "patient": _ref("ConsolePerson"),
            "axis": _obj(
                {"from": _time(nullable=False), "to": _time(nullable=False)},
                description="The time axis to draw: the appointment and every session",
            ),
            "sessions": {
                "type": "array",
                "items": _obj(
                    {
                        "session": _str(),
                        "role": _str(enum=[r.value for r in Role]),
                        "userId": {"type": ["string", "null"]},
                        "joinedAt": _time(),
                        "leftAt": _time(),
                        "endReason": {"type": ["string", "null"]},
                        "repaired": {
                            "type": "boolean",
                            "description": "Closed by the service (restart, snapshot, sweeper)",
                        },
                        "counted": {"type": "boolean"},
                    },
                    additionalProperties=False,
                ),
            },
            "transitions": {
                "type": "array",
                "items": _obj(
                    {
                        "at": _time(nullable=False),
                        "from": {"type": ["string", "null"]},
                        "to": {"type": ["string", "null"]},
                        "actor": _str(),
                        "cause": {"type": ["string", "null"]},
                    },
                    additionalProperties=False,
                ),
            },
            "audit": {
                "type": "array",
                "items": _obj(
                    {
                        "at": _time(nullable=False),
                        "actor": _str(),
                        "action": _str(),
                        "detail": {"type": "object"},
                    },
                    additionalProperties=False,
                ),
            },
            "webhooks": {
                "type": "array",
                "items": _ref("WebhookMessage"),
                "description": "The messages to the clinic about this call, in sequence order",
            },
            "lobby": {
                "type": "array",
                "items": {"type": "object"},
                "description": "Knocks in Jitsi's lobby, as presence.lobby of the call details",
            },
        },
        additionalProperties=False,
    ),
    "ConsoleDoctors": _obj(
        {
            "from": _str(pattern=_DATE),
            "to": _str(pattern=_DATE),
            "doctor": {"type": ["string", "null"]},
            "doctors": {
                "type": "array",
                "items": _obj(
                    {
                        "uid": _str(),
                        "name": _str(),
                        "calls": {"type": "integer", "minimum": 0},
                        "completed": {"type": "integer", "minimum": 0},
                        "noShows": {"type": "integer", "minimum": 0},
                        "minutes": {"type": "number", "minimum": 0},
                        "averageDuration": _num_or_null(description="Seconds"),
                        "noShowRate": _num_or_null(
                            minimum=0, maximum=1, description="NO_SHOW / (COMPLETED + NO_SHOW)"
                        ),
                        "averagePatientWait": _num_or_null(
                            description="Seconds, over COMPLETED calls: patientWaitSeconds"
                        ),
                    },
                    additionalProperties=False,
                ),
            },
            "days": {
                "type": "array",
                "items": _obj(
                    {"date": _str(pattern=_DATE), "minutes": {"type": "number", "minimum": 0}},
                    additionalProperties=False,
                ),
                "description": "Completed minutes on every day of the range",
            },
        },
        additionalProperties=False,
    ),
    "ConsoleHealth": _obj(
        {
            "now": _time(nullable=False),
            "windowHours": {"type": "integer"},
            "prosodyHosts": {
                "type": "array",
                "items": _obj(
                    {
                        "host": _str(),
                        "lastEventAt": _time(nullable=False),
                        "lastEventType": _str(),
                        "bootId": {"type": ["string", "null"]},
                        "lastSeq": _int_or_null(),
                        "events": {"type": "integer", "minimum": 0},
                        "seqGaps": {"type": "integer", "minimum": 0},
                        "restarts": {"type": "integer", "minimum": 0},
                    },
                    additionalProperties=False,
                ),
            },
            "repairs": _obj(
                {
                    "total": {"type": "integer", "minimum": 0},
                    "byReason": {
                        "type": "object",
                        "additionalProperties": {"type": "integer"},
                    },
                },
                additionalProperties=False,
            ),
            "sweeper": _obj(
                {
                    "intervalSeconds": {"type": "integer"},
                    "lastRunAt": _time(),
                    "derived": _int_or_null(),
                    "noShows": _int_or_null(),
                    "overdue": {"type": "boolean"},
                },
                additionalProperties=False,
            ),
            "webhooks": _obj(
                {
                    "enabled": {"type": "boolean", "description": "WEBHOOK_URL is set"},
                    "failed": {"type": "integer", "minimum": 0},
                    "retrying": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Pending after at least one failed attempt",
                    },
                    "failing": {
                        "type": "array",
                        "items": _ref("WebhookMessage"),
                        "description": "The newest failed or retrying messages (at most 10)",
                    },
                },
                additionalProperties=False,
            ),
        },
        additionalProperties=False,
    ),
}


def _static(operation_id: str, summary: str, media: str) -> JSON:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["console"],
            "responses": {
                "200": {"description": summary, "content": {media: {"schema": _str()}}},
            },
        }
    }


PATHS: Final[JSON] = {
    "/console": _static(
        "consolePage",
        "The operator console (sign in with the admin key; strict CSP, no external resources)",
        "text/html",
    ),
    "/console/console.js": _static("consoleScript", "The console's script", "text/javascript"),
    "/console/console.css": _static("consoleStyles", "The console's styles", "text/css"),
    "/api/admin/console/day": {
        "get": {
            "operationId": "consoleDay",
            "summary": "One day's appointments and calls, grouped by what needs attention",
            "description": "Groups: waiting (someone is in the room, the call has not "
            "started), in_progress, starting_soon (within 15 minutes, or due and nobody "
            "there), upcoming, completed, missed, failed, cancelled.",
            "tags": ["console"],
            "security": ADMIN,
            "parameters": [
                _query("date", "The appointments' date (default: today in UTC)", DATE_SCHEMA),
                DOCTOR_QUERY,
            ],
            "responses": {
                "200": _ok("The day", _ref("ConsoleDay")),
                **_admin_errors("Bad date or doctor", ["invalid_query"], []),
            },
        }
    },
    "/api/admin/console/calls/{ref}": {
        "get": {
            "operationId": "consoleCall",
            "summary": "One call's record: presence sessions, status transitions, audit trail",
            "tags": ["console"],
            "security": ADMIN,
            "parameters": [
                {
                    "name": "ref",
                    "in": "path",
                    "required": True,
                    "description": "The video call's id or its appointment's id",
                    "schema": _str(pattern=_ID),
                }
            ],
            "responses": {
                "200": _ok("The call", _ref("ConsoleCall")),
                **_admin_errors(
                    "The ref is not a valid id",
                    ["invalid_id"],
                    ["video_call_not_found", "appointment_not_found", "not_found"],
                    "The admin API is disabled, no such call, or the ref holds a '/'",
                ),
            },
        }
    },
    "/api/admin/console/doctors": {
        "get": {
            "operationId": "consoleDoctors",
            "summary": "Per-doctor totals over a range of appointment dates, and minutes per day",
            "tags": ["console"],
            "security": ADMIN,
            "parameters": [
                _query("from", "First day (default: 29 days before `to`)", DATE_SCHEMA),
                _query("to", "Last day (default: today in UTC)", DATE_SCHEMA),
                DOCTOR_QUERY,
            ],
            "responses": {
                "200": _ok("Totals", _ref("ConsoleDoctors")),
                **_admin_errors(
                    f"Bad date or doctor, from after to, or more than {MAX_RANGE_DAYS} days",
                    ["invalid_query"],
                    [],
                ),
            },
        }
    },
    "/api/admin/console/health": {
        "get": {
            "operationId": "consoleHealth",
            "summary": "Prosody hosts as their stored events show them, repairs, the sweeper",
            "tags": ["console"],
            "security": ADMIN,
            "responses": {
                "200": _ok("Health", _ref("ConsoleHealth")),
                **{
                    code: response
                    for code, response in _admin_errors("unused", [], []).items()
                    if code != "400"
                },
            },
        }
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics (text format), with METRICS_TOKEN",
            "tags": ["operations"],
            "security": [{"metricsToken": []}],
            "responses": {
                "200": {
                    "description": "Prometheus' text exposition format 0.0.4",
                    "content": {"text/plain": {"schema": _str()}},
                },
                "401": _error("Missing or wrong token", ["missing_token", "invalid_token"]),
                "404": _error("Metrics are disabled (METRICS_TOKEN unset)", ["metrics_disabled"]),
                "503": _error(
                    "The database cannot be reached; retry later", ["database_unavailable"]
                ),
            },
        }
    },
}

SECURITY_SCHEMES: Final[JSON] = {
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "METRICS_TOKEN, in Prometheus' scrape config (authorization.credentials)",
    }
}
