"""The OpenAPI 3.1 document of every endpoint this service serves, and GET /openapi.json.

Gathered, not written here: each API module states its operations beside its routes
(`OPERATIONS`: summary, parameters, the error codes of each status) and the wire shapes its
answers have (`SHAPES`); the component schemas are generated from those types (service/wire/)
and from the request bodies' (service/requests.py) by msgspec (apidoc.component_schemas).
What stays here is what no type says: the probes' operations, the few answers built as plain
dicts (health, readiness, errors), and the document's frame (info, security schemes).
tests/api/test_openapi.py holds real responses against it.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.api import (
    admin,
    admin_views,
    console,
    openapi_console,
    openapi_events,
    video_calls,
    webhooks,
)
from service.api import apidoc as doc
from service.api.common import JSONResponse
from service.requests import REQUEST_MODELS
from service.wire import calls as wire_calls
from service.wire.base import APPOINTMENT_STATUSES

JSON = dict[str, Any]


def _closed(properties: JSON, **extra: Any) -> JSON:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
        **extra,
    }


# Answers built as plain dicts (api/health.py, api/common.py's errors): no type to generate from.
PLAIN_SCHEMAS: Final[JSON] = {
    "Health": _closed({"status": doc.string(const="ok")}),
    "Ready": _closed({"status": doc.string(const="ready")}),
    "NotReady": _closed(
        {
            "status": doc.string(const="unavailable"),
            "message": doc.string(),
            "error": doc.string(const="database_unavailable"),
        }
    ),
    "Error": {
        **_closed({"message": doc.string(), "error": doc.string(), "currentStatus": doc.string()}),
        "required": ["message", "error"],
        "description": "Every error; 500 carries only a generic message (internal_error)",
    },
}

PROBES: Final[JSON] = {
    "/healthz": {
        "get": {
            "operationId": "healthz",
            "summary": "Liveness: the process is up",
            "tags": ["health"],
            "security": [],
            "responses": {"200": doc.ok("Up", doc.ref("Health"))},
        }
    },
    "/readyz": {
        "get": {
            "operationId": "readyz",
            "summary": "Readiness: the database takes a write",
            "tags": ["health"],
            "security": [],
            "responses": {
                "200": doc.ok("Ready", doc.ref("Ready")),
                "503": doc.ok(
                    "The database cannot take a write (down, full or read-only)",
                    doc.ref("NotReady"),
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
            "responses": {"200": doc.ok("OpenAPI 3.1 document", {"type": "object"})},
        }
    },
}

PATHS: Final[JSON] = {
    **PROBES,
    **video_calls.OPERATIONS,
    **admin.OPERATIONS,
    **openapi_events.OPERATIONS,
    **webhooks.OPERATIONS,
    **console.OPERATIONS,
    **admin_views.OPERATIONS,
    **openapi_console.OPERATIONS,
}

# Every answer's shape; VideoCall and Presence also for the webhook body, which names them.
SHAPES: Final = (
    *video_calls.SHAPES,
    *admin.SHAPES,
    *webhooks.SHAPES,
    *admin_views.SHAPES,
    wire_calls.VideoCall,
    wire_calls.Presence,
)


def schemas() -> JSON:
    """Request bodies as msgspec writes them, then the answers' (which win a name both use:
    AppointmentStatus, the same enum), then what no type says."""
    return {
        **doc.component_schemas(REQUEST_MODELS, tidy=False),
        **doc.component_schemas(SHAPES),
        # The request bodies' enum (AppointmentUpsert.status) in the document's own idiom.
        "AppointmentStatus": doc.string(enum=APPOINTMENT_STATUSES),
        **PLAIN_SCHEMAS,
        **openapi_events.SCHEMAS,
        "WebhookBody": webhooks.WEBHOOK_BODY,
    }


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
    "webhooks": webhooks.WEBHOOKS,
    "components": {
        "schemas": schemas(),
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
