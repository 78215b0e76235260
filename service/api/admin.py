"""Endpoints for the clinic's backend and operators, guarded by ADMIN_API_KEY."""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import audit, calls, directory, tracking
from service.api import apidoc as doc
from service.api.common import (
    JSONResponse,
    in_thread,
    json_object,
    operator_who,
    page_cursor,
    page_limit,
    require_admin,
    settings_of,
    status_filter,
)
from service.api.video_calls import call_list
from service.domain import audit_chain
from service.fields import APPOINTMENT_ID_REGEX
from service.store.rows import HostRecord
from service.wire import admin as wire
from service.wire import audit as audit_wire


async def put_user(request: Request) -> Response:
    who = operator_who(require_admin(request, write=True), request)
    body = await json_object(request)
    uid: str = request.path_params["uid"]
    row = await in_thread(lambda: directory.upsert_user(uid, body, who))
    return JSONResponse(wire.user_saved(row))


async def put_appointment(request: Request) -> Response:
    who = operator_who(require_admin(request, write=True), request)
    body = await json_object(request)
    appointment_id: str = request.path_params["id"]
    row = await in_thread(lambda: directory.upsert_appointment(appointment_id, body, who))
    return JSONResponse(wire.appointment_saved(row))


async def list_calls(request: Request) -> Response:
    who = operator_who(require_admin(request), request)
    status = status_filter(request)
    limit = page_limit(request)
    cursor = page_cursor(request)
    settings = settings_of(request)

    def read() -> calls.CallPage:
        page = calls.list_for_admin(status, cursor, limit)
        detail = {"count": len(page.items), "status": status}
        audit.record_read(settings, who, "admin.calls.listed", detail=detail)
        return page

    return JSONResponse(call_list(await in_thread(read)))


async def list_prosody_hosts(request: Request) -> Response:
    who = operator_who(require_admin(request), request)
    settings = settings_of(request)

    def read() -> list[tuple[HostRecord, bool]]:
        found = tracking.prosody_hosts()
        audit.record_read(settings, who, "prosody_hosts.listed", detail={"count": len(found)})
        return found

    return JSONResponse(wire.prosody_hosts(await in_thread(read)))


async def list_audit_checkpoints(request: Request) -> Response:
    who = operator_who(require_admin(request), request)
    limit = page_limit(request)
    settings = settings_of(request)

    def read() -> list[audit_chain.Checkpoint]:
        found = audit.checkpoints(limit)
        audit.record_read(settings, who, "audit.checkpoints.listed", detail={"count": len(found)})
        return found

    return JSONResponse(audit_wire.checkpoint_list(await in_thread(read)))


async def verify_audit(request: Request) -> Response:
    who = operator_who(require_admin(request), request)
    settings = settings_of(request)

    def read() -> audit.Verification:
        # The entry goes after the walk: it says what this verification saw.
        result = audit.verify(settings)
        detail = {"count": result.entries, "verified": result.ok}
        audit.record_read(settings, who, "audit.verified", detail=detail)
        return result

    result = await in_thread(read)
    return JSONResponse(
        audit_wire.verification(
            result.entries,
            result.head_hash,
            result.checkpoints,
            result.keys_pinned,
            result.failure,
        )
    )


routes = [
    Route("/api/admin/users/{uid}", put_user, methods=["PUT"]),
    Route("/api/admin/appointments/{id}", put_appointment, methods=["PUT"]),
    Route("/api/admin/video-calls", list_calls, methods=["GET"]),
    Route("/api/admin/prosody-hosts", list_prosody_hosts, methods=["GET"]),
    Route("/api/admin/audit/checkpoints", list_audit_checkpoints, methods=["GET"]),
    Route("/api/admin/audit/verify", verify_audit, methods=["GET"]),
]

# --- the document's facts about these operations (service/api/openapi.py gathers them) ------


def _saved(
    operation_id: str, summary: str, parameter: doc.JSON, request: str, answer: str, **by: Any
) -> doc.JSON:
    """A PUT of the directory: idempotent, a JSON body, 200 with what was saved."""
    name = parameter["name"]
    return {
        "put": {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["admin"],
            "security": doc.ADMIN,
            "parameters": [parameter],
            "requestBody": doc.body(request),
            "responses": doc.admin_responses(
                **{
                    "200": doc.ok("Saved", doc.ref(answer)),
                    "403": doc.ADMIN_WRITE_FORBIDDEN,
                    "404": doc.error(
                        f"The admin API is disabled, or the {name} holds a '/'",
                        ["admin_api_disabled", doc.ROUTE_NOT_FOUND],
                    ),
                    "408": doc.SLOW_BODY,
                    "413": doc.TOO_LARGE,
                    **by,
                }
            ),
        }
    }


def _listing(
    operation_id: str,
    summary: str,
    answer: str,
    description: str,
    parameters: list[doc.JSON] | None = None,
    **by_status: doc.JSON,
) -> doc.JSON:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["admin"],
            "security": doc.ADMIN,
            **({"parameters": parameters} if parameters is not None else {}),
            "responses": doc.admin_responses(
                **{"200": doc.ok(description, doc.ref(answer))}, **by_status
            ),
        }
    }


OPERATIONS: Final[doc.JSON] = {
    "/api/admin/users/{uid}": _saved(
        "upsertUser",
        "Create or replace a user (idempotent)",
        doc.id_parameter("uid", "The Firebase uid"),
        "UserUpsert",
        "UserSaved",
        **{
            "400": doc.error(
                "Malformed uid or body", [*doc.BODY_CODES, "invalid_id", "invalid_body"]
            )
        },
    ),
    "/api/admin/appointments/{id}": _saved(
        "upsertAppointment",
        "Create or replace an appointment (idempotent)",
        doc.id_parameter(
            "id", "The appointment id (it names the Jitsi room)", APPOINTMENT_ID_REGEX
        ),
        "AppointmentUpsert",
        "AppointmentSaved",
        **{
            "400": doc.error(
                "Malformed id or body, or `unknown_user`: doctorUid or patientUid names a "
                "user not yet created with PUT /api/admin/users/{uid}",
                [*doc.BODY_CODES, "invalid_id", "invalid_body", "unknown_user"],
            ),
            "409": doc.error(
                "Another stored appointment's id differs from this one only in letter case: "
                "the two would share a Jitsi room",
                ["room_conflict"],
            ),
        },
    ),
    "/api/admin/video-calls": _listing(
        "adminListVideoCalls",
        "Every video call, or those in one status, newest first",
        "VideoCallList",
        "One page",
        [doc.STATUS_QUERY, doc.LIMIT_QUERY, doc.CURSOR_QUERY],
        **{"400": doc.error("Bad status, limit or cursor", doc.PAGING_CODES)},
    ),
    "/api/admin/prosody-hosts": _listing(
        "adminListProsodyHosts",
        "Every Prosody host heard from: boot, last heard, snapshot interval, silent",
        "ProsodyHostList",
        "Hosts, by name",
    ),
    "/api/admin/audit/checkpoints": _listing(
        "adminListAuditCheckpoints",
        "The audit trail's signed checkpoints, newest first (keep copies outside)",
        "AuditCheckpointList",
        "The newest checkpoints",
        [doc.LIMIT_QUERY],
        **{"400": doc.error("Bad limit", doc.PAGING_CODES)},
    ),
    "/api/admin/audit/verify": _listing(
        "adminVerifyAudit",
        "Walk the audit trail's hash chain and check every stored checkpoint",
        "AuditVerification",
        "The verification; `failure` names the first entry that does not fit",
    ),
}
# The answers' schemas: components generated from these types.
SHAPES: Final = (
    wire.UserSaved,
    wire.AppointmentSaved,
    wire.ProsodyHostList,
    audit_wire.AuditCheckpointList,
    audit_wire.AuditVerification,
)
