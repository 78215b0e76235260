"""What the OpenAPI document's operations share, and the component schemas made from types.

Each API module states its own operations beside its routes (`OPERATIONS`, keyed by path and
method) with these helpers; service/api/openapi.py gathers them into one document. Response
bodies are `$ref`s to components generated from the wire shapes (service/wire/), request
bodies to those of service/requests.py: what a type says is never written again here. What
types cannot say stays hand-written: summaries, the error codes each status may carry,
parameters, security.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec

from service.api.common import DEFAULT_PAGE, MAX_PAGE
from service.api.middleware import MAX_BODY_BYTES
from service.fields import ID_REGEX
from service.wire.base import CALL_STATUSES, DATE_PATTERN

JSON = dict[str, Any]
REF_TEMPLATE: Final = "#/components/schemas/{name}"

FIREBASE: Final[list[JSON]] = [{"firebaseIdToken": []}]
ADMIN: Final[list[JSON]] = [{"adminKey": []}]


# --- component schemas from types ---------------------------------------------------------


def _tidy(node: Any) -> Any:
    """msgspec's schema in the document's idiom: a nullable scalar is `"type": [t, "null"]`
    (an enum of it gains `null`), not an `anyOf` of the two."""
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _tidy(value) for key, value in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        other = next(o for o in options if o != {"type": "null"})
        if isinstance(other.get("type"), str) and "$ref" not in other:
            merged = {key: value for key, value in node.items() if key != "anyOf"}
            merged.update(other)
            merged["type"] = [other["type"], "null"]
            if "enum" in other:
                merged["enum"] = [*other["enum"], None]
            return merged
    return node


def component_schemas(types: Iterable[Any], *, tidy: bool = True) -> JSON:
    """The components msgspec generates for `types` (and every type they reach), by name.

    `tidy=False` keeps msgspec's own form (the request bodies, as they always were)."""
    _, components = msgspec.json.schema_components(list(types), ref_template=REF_TEMPLATE)
    if not tidy:
        return components
    # A component's title is its name, already the key.
    return {
        name: _tidy({key: value for key, value in schema.items() if key != "title"})
        for name, schema in components.items()
    }


# --- responses ----------------------------------------------------------------------------


def ref(name: str) -> JSON:
    return {"$ref": REF_TEMPLATE.format(name=name)}


def string(**extra: Any) -> JSON:
    return {"type": "string", **extra}


def _json(schema: JSON) -> JSON:
    return {"application/json": {"schema": schema}}


def ok(description: str, schema: JSON) -> JSON:
    return {"description": description, "content": _json(schema)}


def body(name: str) -> JSON:
    """A required JSON request body of component `name`."""
    return {"required": True, "content": _json(ref(name))}


def error(description: str, codes: list[str], *, current_status: list[str] | None = None) -> JSON:
    """A `{"message", "error"}` response (service/api/common.py) whose `error` is in `codes`."""
    properties: JSON = {
        "message": string(description="Human-readable; do not parse"),
        "error": string(enum=codes, description="Machine-readable code"),
    }
    if current_status is not None:
        properties["currentStatus"] = string(
            enum=current_status, description="The status that refused the request"
        )
    schema = {
        "type": "object",
        "properties": properties,
        "required": ["message", "error"],
        "additionalProperties": False,
    }
    return {"description": description, "content": _json(schema)}


RETRY_AFTER: Final = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
AUTH_CODES: Final = ["missing_token", "invalid_token", "expired_token", "revoked_token"]
UNAUTHORIZED: Final = error(
    "Missing, malformed, invalid, expired or revoked ID token, or a disabled account",
    [*AUTH_CODES, "user_disabled"],
)
ADMIN_UNAUTHORIZED: Final = error("Missing admin key", ["missing_token"])
ADMIN_FORBIDDEN: Final = error("Wrong admin key", ["invalid_admin_key"])
# A change needs a read-write key (ADMIN_API_KEYS' `rw`; ADMIN_API_KEY is one).
ADMIN_WRITE_FORBIDDEN: Final = error(
    "Wrong admin key, or a read-only one", ["invalid_admin_key", "read_only_admin_key"]
)
# The admin API answers 404 for everything while ADMIN_API_KEY is unset.
ADMIN_DISABLED: Final = error(
    "The admin API is disabled (ADMIN_API_KEY unset)", ["admin_api_disabled"]
)
UNAVAILABLE: Final = {
    **error(
        "The database, or Firebase's certificates, cannot be reached; retry later",
        ["database_unavailable", "auth_unavailable"],
    ),
    "headers": RETRY_AFTER,
}
# Too many wrong admin keys from one address within a minute (service/api/throttle.py).
ADMIN_THROTTLED: Final = {
    **error("Too many wrong admin keys from this address; wait", ["too_many_requests"]),
    "headers": RETRY_AFTER,
}
ADMIN_UNAVAILABLE: Final = {
    **error("The database cannot be reached; retry later", ["database_unavailable"]),
    "headers": RETRY_AFTER,
}
INACTIVE: Final = error("The caller's account is unknown or inactive", ["account_inactive"])
TOO_LARGE: Final = error(f"Request body over {MAX_BODY_BYTES} bytes", ["payload_too_large"])
# BODY_READ_TIMEOUT (service/api/middleware.py BodyLimit): the body arrived too slowly.
SLOW_BODY: Final = error(
    "The request body did not arrive within BODY_READ_TIMEOUT seconds", ["request_timeout"]
)
# Bodies over 64 KiB held at once per worker (BodyLimit's MAX_BIG_BODIES).
BIG_BODY_BUSY: Final = {
    **error(
        "The database cannot be reached, or too many large uploads are under way; retry later",
        ["database_unavailable", "busy"],
    ),
    "headers": RETRY_AFTER,
}
# A {ref} holding an encoded "/" no longer matches the route: the router's own 404.
ROUTE_NOT_FOUND: Final = "not_found"

BODY_CODES: Final = ["invalid_json", "bad_request"]  # bad_request: unreadable Content-Length
PAGING_CODES: Final = ["invalid_query", "invalid_cursor"]


def admin_responses(**by_status: JSON) -> JSON:
    """401, 403, 404 (disabled), 429 and 503 of an admin operation, and `by_status` besides."""
    return {
        "401": ADMIN_UNAUTHORIZED,
        "403": ADMIN_FORBIDDEN,
        "404": ADMIN_DISABLED,
        "429": ADMIN_THROTTLED,
        "503": ADMIN_UNAVAILABLE,
        **by_status,
    }


# --- parameters ---------------------------------------------------------------------------

STATUS_QUERY: Final = {
    "name": "status",
    "in": "query",
    "required": False,
    "description": "Only calls in this status (empty means any)",
    "schema": string(enum=CALL_STATUSES),
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
    "schema": string(),
}


def query(name: str, description: str, schema: JSON) -> JSON:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def date_query(name: str, description: str) -> JSON:
    return query(name, description, string(format="date", pattern=DATE_PATTERN))


def id_parameter(name: str, description: str, pattern: str = ID_REGEX) -> JSON:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": string(pattern=pattern),
    }
