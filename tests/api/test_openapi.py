"""GET /openapi.json against the code: real responses validated, then a schemathesis run.

Part one drives every endpoint through its success and error paths and validates each real
response against the document's schema for that status code. Part two lets schemathesis
generate requests from the document, valid and invalid ones, sent mostly as the seeded doctor
(sometimes as the patient, an outsider, an inactive account, or with no or a bad token) and
with the admin key, often aimed at seeded appointment and call ids; it checks for 5xx, for
undocumented status codes and content types, and for bodies that break the schema. About
1200 cases, a few seconds, so both parts run on SQLite and on PostgreSQL.

Inputs that once caused server errors have their own regression tests at the end.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
import jwt
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route
from starlette.testclient import TestClient

from harness.env import base_env
from service.api import openapi
from service.api.health import PROBE_INTERVAL_MS
from service.api.middleware import MAX_BODY_BYTES
from service.api.prosody import EVENT_SYNC_KINDS
from service.app import create_app
from service.auth.dev import DEV_AUDIENCE, DEV_ISSUER, mint_dev_token
from service.clock import now_s
from service.config import Settings, load_settings
from service.store.db import DatabaseUnavailable
from tests.api.conftest import Api
from tests.clock import FrozenClock

DOC = openapi.DOCUMENT
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


# --- validating one response against the document ----------------------------------------


def _validator(path: str, method: str, status: int) -> jsonschema_rs.Validator:
    responses = DOC["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not document {status}"
    content = responses[str(status)]["content"]
    # JSON almost everywhere; the console's files and /metrics document their own types.
    schema = content.get("application/json", next(iter(content.values())))["schema"]
    # The document's components travel along so that "#/components/..." references resolve.
    root = {"$schema": JSON_SCHEMA_DIALECT, "components": DOC["components"], **schema}
    return jsonschema_rs.validator_for(root, validate_formats=True)


def conforms(response: Any, path: str, method: str, status: int | None = None) -> Any:
    """Assert the response is documented for `method path` and matches its schema."""
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    errors = [
        f"{e.instance_path}: {e.message}"
        for e in _validator(path, method, response.status_code).iter_errors(body)
    ]
    assert not errors, f"{method.upper()} {path} -> {response.status_code}: {errors}\n{body}"
    return body


def expired_token(settings: Settings, uid: str) -> str:
    now = now_s() - 3600
    claims = {"sub": uid, "iat": now, "exp": now + 60, "iss": DEV_ISSUER, "aud": DEV_AUDIENCE}
    return jwt.encode(claims, settings.dev_auth_secret, algorithm="HS256")


def cursor_of(created_at: int, call_id: str) -> str:
    raw = json.dumps([created_at, call_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


LIST = "/api/video-calls"
INITIATE = "/api/video-calls/initiate"
STATS = "/api/video-calls/stats"
TOKEN = "/api/video-calls/token/{ref}"
STATUS = "/api/video-calls/{ref}/status"
DETAILS = "/api/video-calls/{ref}"
USERS = "/api/admin/users/{uid}"
APPOINTMENTS = "/api/admin/appointments/{id}"
ADMIN_LIST = "/api/admin/video-calls"
NO_AUTH = {"Authorization": "Bearer not-a-token"}


# --- the document itself --------------------------------------------------------------------


def test_every_route_is_documented_and_nothing_else(api: Api) -> None:
    served = set()
    for route in api.client.app.routes:  # type: ignore[attr-defined]
        assert isinstance(route, Route)
        # The event_sync route takes any {kind:path}; the document names the kinds it accepts.
        paths = (
            [route.path.replace("{kind:path}", kind) for kind in EVENT_SYNC_KINDS]
            if "{kind:path}" in route.path
            else [route.path]
        )
        served |= {(p, m.lower()) for p in paths for m in route.methods or () if m != "HEAD"}
    documented = {(path, method) for path, item in DOC["paths"].items() for method in item}
    assert served == documented


def test_openapi_json_serves_the_document(api: Api) -> None:
    response = api.client.get("/openapi.json")
    assert conforms(response, "/openapi.json", "get", 200) == DOC
    assert DOC["openapi"].startswith("3.1")
    # schemathesis validates the document on load and finds every operation in it.
    schema = schemathesis.openapi.from_dict(DOC)
    assert sum(isinstance(result, Ok) for result in schema.get_all_operations()) == 30


def test_every_documented_schema_is_valid_json_schema() -> None:
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if "content" in response:
                    _validator(path, method, int(status))  # raises on an invalid schema


# --- health -------------------------------------------------------------------------------


def test_health_endpoints(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    conforms(api.client.get("/healthz"), "/healthz", "get", 200)
    conforms(api.client.get("/readyz"), "/readyz", "get", 200)
    monkeypatch.setattr("service.store.uow.can_write", lambda: False)
    api.clock.advance(PROBE_INTERVAL_MS)  # past the last probe's answer
    body = conforms(api.client.get("/readyz"), "/readyz", "get", 503)
    assert body["error"] == "database_unavailable"


# --- the five endpoints and statistics -------------------------------------------------------


def test_initiate_responses(seeded: Api) -> None:
    api, post = seeded, seeded.client.post
    body = conforms(api.initiate("doc", "appt1"), INITIATE, "post", 200)
    assert body["userRole"] == "doctor"
    body = conforms(api.initiate("pat", "appt1"), INITIATE, "post", 200)
    assert body["userRole"] == "patient"

    doc = api.auth("doc")
    for raw, code in [
        (b"", "invalid_json"),
        (b"{not json", "invalid_json"),
        (b"[1]", "invalid_json"),
        (b"{}", "missing_appointment_id"),
        (b'{"appointmentId": 7}', "invalid_body"),
        (json.dumps({"appointmentId": "x" * 129}).encode(), "invalid_id"),
    ]:
        response = post(INITIATE, content=raw, headers=doc)
        assert conforms(response, INITIATE, "post", 400)["error"] == code

    api.put_appointment("pending", status="PENDING")
    body = conforms(api.initiate("doc", "pending"), INITIATE, "post", 400)
    assert (body["error"], body["currentStatus"]) == ("appointment_not_active", "PENDING")

    body = conforms(post(INITIATE, json={"appointmentId": "appt1"}), INITIATE, "post", 401)
    assert body["error"] == "missing_token"
    response = post(INITIATE, json={"appointmentId": "appt1"}, headers=NO_AUTH)
    assert conforms(response, INITIATE, "post", 401)["error"] == "invalid_token"
    expired = {"Authorization": f"Bearer {expired_token(api.settings, 'doc')}"}
    response = post(INITIATE, json={"appointmentId": "appt1"}, headers=expired)
    assert conforms(response, INITIATE, "post", 401)["error"] == "expired_token"

    body = conforms(api.initiate("outsider", "appt1"), INITIATE, "post", 403)
    assert body["error"] == "not_participant"
    api.put_user("gone", isActive=False)
    api.put_appointment("with-gone", patientUid="gone")
    body = conforms(api.initiate("doc", "with-gone"), INITIATE, "post", 403)
    assert body["error"] == "account_inactive"

    body = conforms(api.initiate("doc", "nope"), INITIATE, "post", 403)
    assert body["error"] == "not_participant"

    api.put_appointment("cancelled-call")
    api.initiate("doc", "cancelled-call")
    api.report("doc", "cancelled-call", "cancel")
    body = conforms(api.initiate("doc", "cancelled-call"), INITIATE, "post", 409)
    assert (body["error"], body["currentStatus"]) == ("call_closed", "CANCELLED")

    big = {"appointmentId": "appt1", "padding": "x" * MAX_BODY_BYTES}
    body = conforms(post(INITIATE, json=big, headers=doc), INITIATE, "post", 413)
    assert body["error"] == "payload_too_large"
    bad_length = {**doc, "Content-Length": "many"}
    response = post(INITIATE, content=b"{}", headers=bad_length)
    assert conforms(response, INITIATE, "post", 400)["error"] == "bad_request"


def test_token_responses(seeded: Api) -> None:
    api, get = seeded, seeded.client.get
    body = conforms(get("/api/video-calls/token/appt1", headers=api.auth("doc")), TOKEN, "get", 404)
    assert body["error"] == "video_call_not_found"
    call_id = api.initiate("doc", "appt1").json()["videoCall"]["id"]
    for ref in ("appt1", call_id):
        response = get(f"/api/video-calls/token/{ref}", headers=api.auth("pat"))
        assert conforms(response, TOKEN, "get", 200)["message"] == "Token retrieved successfully"
    response = get("/api/video-calls/token/" + "x" * 129, headers=api.auth("doc"))
    assert conforms(response, TOKEN, "get", 400)["error"] == "invalid_id"
    conforms(get("/api/video-calls/token/appt1"), TOKEN, "get", 401)
    response = get("/api/video-calls/token/appt1", headers=api.auth("outsider"))
    assert conforms(response, TOKEN, "get", 403)["error"] == "not_participant"
    response = get("/api/video-calls/token/nothing-here", headers=api.auth("doc"))
    assert conforms(response, TOKEN, "get", 403)["error"] == "not_participant"
    api.report("doc", "appt1", "failed")
    body = conforms(get("/api/video-calls/token/appt1", headers=api.auth("doc")), TOKEN, "get", 409)
    assert (body["error"], body["currentStatus"]) == ("call_closed", "FAILED")


@pytest.mark.presence_from_clients
def test_status_responses(seeded: Api) -> None:
    api, patch = seeded, seeded.client.patch
    conforms(api.report("doc", "appt1", "join"), STATUS, "patch", 404)
    call_id = api.initiate("doc", "appt1").json()["videoCall"]["id"]
    body = conforms(api.report("doc", "appt1", "join"), STATUS, "patch", 200)
    assert body["videoCall"]["doctorJoinedAt"] is not None
    assert body["videoCall"]["startedAt"] is None
    body = conforms(api.report("pat", call_id, "join"), STATUS, "patch", 200)
    assert body["videoCall"]["status"] == "IN_PROGRESS"
    assert body["videoCall"]["duration"] is None
    body = conforms(api.report("doc", "appt1", "end"), STATUS, "patch", 200)
    assert body["videoCall"]["status"] == "COMPLETED"
    assert isinstance(body["videoCall"]["duration"], int)
    body = conforms(api.report("doc", "appt1", "start"), STATUS, "patch", 409)
    assert (body["error"], body["currentStatus"]) == ("invalid_transition", "COMPLETED")

    url, doc = "/api/video-calls/appt1/status", api.auth("doc")
    for payload, code in [
        ({}, "missing_action"),
        ({"action": ""}, "missing_action"),
        ({"action": "dance"}, "unknown_action"),
        ({"action": ["join"]}, "unknown_action"),
    ]:
        response = patch(url, json=payload, headers=doc)
        assert conforms(response, STATUS, "patch", 400)["error"] == code
    assert conforms(patch(url, content=b"nope", headers=doc), STATUS, "patch", 400)["error"] == (
        "invalid_json"
    )
    response = patch(
        "/api/video-calls/" + "x" * 129 + "/status", json={"action": "join"}, headers=doc
    )
    assert conforms(response, STATUS, "patch", 400)["error"] == "invalid_id"
    conforms(patch(url, json={"action": "join"}), STATUS, "patch", 401)
    conforms(api.report("outsider", "appt1", "join"), STATUS, "patch", 403)
    big = {"action": "join", "padding": "x" * MAX_BODY_BYTES}
    conforms(patch(url, json=big, headers=doc), STATUS, "patch", 413)


def test_details_responses(seeded: Api) -> None:
    api, get = seeded, seeded.client.get
    conforms(get("/api/video-calls/appt1", headers=api.auth("doc")), DETAILS, "get", 404)
    api.initiate("doc", "appt1")
    body = conforms(get("/api/video-calls/appt1", headers=api.auth("pat")), DETAILS, "get", 200)
    assert body["videoCall"]["duration"] is None
    assert body["doctor"]["uid"] == "doc"
    api.report("doc", "appt1", "join")
    api.report("pat", "appt1", "join")
    api.report("doc", "appt1", "end")
    conforms(get("/api/video-calls/appt1", headers=api.auth("doc")), DETAILS, "get", 200)
    conforms(get("/api/video-calls/" + "y" * 129, headers=api.auth("doc")), DETAILS, "get", 400)
    conforms(get("/api/video-calls/appt1"), DETAILS, "get", 401)
    conforms(get("/api/video-calls/appt1", headers=api.auth("outsider")), DETAILS, "get", 403)
    # An encoded "/" in the ref leaves the route: the router's own 404, same shape.
    response = get("/api/video-calls/a%2Fb", headers=api.auth("doc"))
    assert conforms(response, DETAILS, "get", 404)["error"] == "not_found"


@pytest.mark.presence_from_clients
def test_list_responses(seeded: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    api, get = seeded, seeded.client.get
    body = conforms(get(LIST, headers=api.auth("doc")), LIST, "get", 200)
    assert (body["count"], body["nextCursor"]) == (0, None)
    api.put_appointment("appt2")
    api.initiate("doc", "appt1")
    api.initiate("doc", "appt2")
    api.report("doc", "appt2", "join")
    api.report("pat", "appt2", "join")
    api.report("doc", "appt2", "end")
    first = conforms(get(LIST, params={"limit": 1}, headers=api.auth("pat")), LIST, "get", 200)
    assert first["count"] == 1 and first["nextCursor"] is not None
    second = conforms(
        get(LIST, params={"limit": 1, "cursor": first["nextCursor"]}, headers=api.auth("pat")),
        LIST,
        "get",
        200,
    )
    assert second["videoCalls"][0]["id"] != first["videoCalls"][0]["id"]
    body = conforms(get(LIST, params={"status": "COMPLETED"}, headers=api.auth("doc")), LIST, "get")
    assert [c["status"] for c in body["videoCalls"]] == ["COMPLETED"]
    assert isinstance(body["videoCalls"][0]["duration"], int)

    for params, code in [
        ({"status": "DONE"}, "invalid_query"),
        ({"limit": "0"}, "invalid_query"),
        ({"limit": "201"}, "invalid_query"),
        ({"limit": "-1"}, "invalid_query"),
        ({"cursor": "!!!"}, "invalid_cursor"),
        ({"cursor": cursor_of(1, "x")[:-2]}, "invalid_cursor"),
    ]:
        body = conforms(get(LIST, params=params, headers=api.auth("doc")), LIST, "get", 400)
        assert body["error"] == code
    conforms(get(LIST), LIST, "get", 401)
    conforms(get(LIST, headers=NO_AUTH), LIST, "get", 401)

    def down(*args: Any) -> Any:
        raise DatabaseUnavailable("down")

    monkeypatch.setattr("service.calls.list_for_user", down)
    body = conforms(get(LIST, headers=api.auth("doc")), LIST, "get", 503)
    assert body["error"] == "database_unavailable"


@pytest.mark.presence_from_clients
def test_stats_responses(seeded: Api) -> None:
    api, get = seeded, seeded.client.get
    body = conforms(get(STATS, headers=api.auth("doc")), STATS, "get", 200)
    assert body["avgDuration"] is None
    api.initiate("doc", "appt1")
    api.report("doc", "appt1", "join")
    api.report("pat", "appt1", "join")
    api.report("doc", "appt1", "end")
    berlin = "Europe/Berlin"
    params = {"from": api.clock.day(berlin, -1), "to": api.clock.day(berlin, 1)}
    body = conforms(get(STATS, params=params, headers=api.auth("doc")), STATS, "get", 200)
    assert body["totalCalls"] == 1 and isinstance(body["avgDuration"], float)
    for params in ({"from": "yesterday"}, {"to": "2026-1-1"}):
        body = conforms(get(STATS, params=params, headers=api.auth("doc")), STATS, "get", 400)
        assert body["error"] == "invalid_query"
    conforms(get(STATS), STATS, "get", 401)


# --- admin ----------------------------------------------------------------------------------


def test_admin_user_responses(api: Api) -> None:
    put, admin = api.client.put, api.admin()
    body = conforms(
        put("/api/admin/users/u1", json={"firstName": "Ann", "role": "x"}, headers=admin),
        USERS,
        "put",
        200,
    )
    assert body["user"] == {
        "uid": "u1",
        "firstName": "Ann",
        "lastName": "",
        "email": None,
        "profileImageUrl": None,
        "isActive": True,
    }
    for uid, payload, code in [
        ("bad%20id", {"firstName": "A"}, "invalid_id"),
        ("u1", {}, "invalid_body"),
        ("u1", {"firstName": "  "}, "invalid_body"),
        ("u1", {"firstName": "A", "isActive": "yes"}, "invalid_body"),
        ("u1", {"firstName": "A", "email": "e" * 321}, "invalid_body"),
    ]:
        response = put(f"/api/admin/users/{uid}", json=payload, headers=admin)
        assert conforms(response, USERS, "put", 400)["error"] == code
    response = put("/api/admin/users/u1", content=b"[]", headers=admin)
    assert conforms(response, USERS, "put", 400)["error"] == "invalid_json"
    conforms(put("/api/admin/users/u1", json={"firstName": "A"}), USERS, "put", 401)
    response = put("/api/admin/users/u1", json={"firstName": "A"}, headers=NO_AUTH)
    assert conforms(response, USERS, "put", 403)["error"] == "invalid_admin_key"
    big = {"firstName": "A", "padding": "x" * MAX_BODY_BYTES}
    conforms(put("/api/admin/users/u1", json=big, headers=admin), USERS, "put", 413)


def _appointment(api: Api, doctor: str, patient: str) -> dict[str, Any]:
    return {
        "doctorUid": doctor,
        "patientUid": patient,
        "appointmentDate": api.clock.day(),
        "startTime": "23:30",
        "endTime": "00:15",
        "status": "CONFIRMED",
    }


def test_admin_appointment_responses(api: Api) -> None:
    put, admin = api.client.put, api.admin()
    response = put("/api/admin/appointments/a1", json=_appointment(api, "d", "p"), headers=admin)
    assert conforms(response, APPOINTMENTS, "put", 400)["error"] == "unknown_user"
    api.put_user("d")
    api.put_user("p")
    payload = {
        "doctorUid": "d",
        "patientUid": "p",
        "appointmentDate": api.clock.day(),
        "startTime": "23:30",
        "endTime": "00:15",
        "status": "CONFIRMED",
    }
    body = conforms(
        put("/api/admin/appointments/a1", json=payload, headers=admin), APPOINTMENTS, "put", 200
    )
    assert body["appointment"]["timezone"] == "UTC"
    changes: list[dict[str, Any]] = [
        {"patientUid": "d"},
        {"appointmentDate": api.clock.day()[:4] + "-02-30"},
        {"startTime": "24:00"},
        {"timezone": "Mars/Olympus"},
        {"status": "DONE"},
        {"doctorUid": None},
    ]
    for change in changes:
        response = put("/api/admin/appointments/a1", json={**payload, **change}, headers=admin)
        assert conforms(response, APPOINTMENTS, "put", 400)["error"] == "invalid_body"
    response = put("/api/admin/appointments/a%20b", json=payload, headers=admin)
    assert conforms(response, APPOINTMENTS, "put", 400)["error"] == "invalid_id"
    response = put("/api/admin/appointments/A1", json=payload, headers=admin)
    assert conforms(response, APPOINTMENTS, "put", 409)["error"] == "room_conflict"
    conforms(put("/api/admin/appointments/a1", json=payload), APPOINTMENTS, "put", 401)
    conforms(
        put("/api/admin/appointments/a1", json=payload, headers=NO_AUTH), APPOINTMENTS, "put", 403
    )


def test_admin_list_responses(seeded: Api) -> None:
    api, get = seeded, seeded.client.get
    api.initiate("doc", "appt1")
    body = conforms(get(ADMIN_LIST, headers=api.admin()), ADMIN_LIST, "get", 200)
    assert body["count"] == 1
    params = {"status": "IN_PROGRESS"}
    body = conforms(get(ADMIN_LIST, params=params, headers=api.admin()), ADMIN_LIST, "get", 200)
    assert body["count"] == 0
    conforms(get(ADMIN_LIST, params={"limit": "x"}, headers=api.admin()), ADMIN_LIST, "get", 400)
    conforms(get(ADMIN_LIST), ADMIN_LIST, "get", 401)
    conforms(get(ADMIN_LIST, headers=NO_AUTH), ADMIN_LIST, "get", 403)


def test_admin_api_disabled_answers_404(database_url: str) -> None:
    settings = load_settings(base_env(DATABASE_URL=database_url, ADMIN_API_KEY=""))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        headers = {"Authorization": "Bearer anything"}
        for response, path, method in [
            (client.get(ADMIN_LIST, headers=headers), ADMIN_LIST, "get"),
            (client.put("/api/admin/users/u", json={}, headers=headers), USERS, "put"),
            (
                client.put("/api/admin/appointments/a", json={}, headers=headers),
                APPOINTMENTS,
                "put",
            ),
        ]:
            assert conforms(response, path, method, 404)["error"] == "admin_api_disabled"


# --- schemathesis -----------------------------------------------------------------------------

# Up to this many per operation; small input spaces (the probes) end early.
EXAMPLES_PER_OPERATION = 100
MINIMUM_CASES = 500
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
APPOINTMENT_IDS = ["fz-confirmed", "fz-progress", "fz-pending", "fz-done", "fz-inactive"]


@dataclass
class Fuzz:
    settings: Settings
    database_url: str
    calls: list[str]
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    @property
    def cases(self) -> int:
        return sum(self.statuses.values())


@pytest.fixture
def fuzz(settings: Settings, database_url: str, clock: FrozenClock) -> Iterator[Fuzz]:
    """Seeded participants and appointments whose ids the generated requests sometimes use."""
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api(client, settings, clock)
        for uid in ("doc", "pat", "outsider"):
            api.put_user(uid)
        api.put_user("gone", isActive=False)
        for appointment_id, status in zip(
            APPOINTMENT_IDS[:4], ["CONFIRMED", "IN_PROGRESS", "PENDING", "COMPLETED"], strict=True
        ):
            api.put_appointment(appointment_id, status=status)
        api.put_appointment("fz-inactive", patientUid="gone")
        calls = [
            api.initiate("doc", appointment_id).json()["videoCall"]["id"]
            for appointment_id in APPOINTMENT_IDS[:2]
        ]
        yield Fuzz(settings, database_url, calls)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _bearer(settings: Settings, uid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(settings, uid)}"}


def _who(fuzz: Fuzz, operation_path: str) -> st.SearchStrategy[dict[str, str]]:
    if operation_path.startswith("/api/event-sync/"):
        token = {"Authorization": f"Bearer {fuzz.settings.event_sync_token}"}
        return st.sampled_from([token] * 8 + [{}, NO_AUTH])
    if operation_path.startswith("/api/admin/"):
        admin = {"Authorization": f"Bearer {fuzz.settings.admin_api_key}"}
        return st.sampled_from([admin] * 8 + [{}, NO_AUTH])
    if operation_path.startswith("/api/"):
        people = [_bearer(fuzz.settings, "doc")] * 5 + [
            _bearer(fuzz.settings, uid) for uid in ("pat", "outsider", "gone")
        ]
        return st.sampled_from([*people, {}, NO_AUTH])
    return st.just({})


def _strategy(operation: Any, fuzz: Fuzz) -> st.SearchStrategy[Any]:
    strategies = [
        operation.as_strategy(),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    ]
    if "{ref}" in operation.path:
        refs = [*APPOINTMENT_IDS, *fuzz.calls]
        strategies += [operation.as_strategy(path_parameters={"ref": ref}) for ref in refs]
    if operation.path == INITIATE:
        strategies += [
            operation.as_strategy(body={"appointmentId": ref}) for ref in APPOINTMENT_IDS
        ]
    if operation.path == APPOINTMENTS:
        strategies.append(operation.as_strategy(path_parameters={"id": "fz-progress"}))
    return st.one_of(strategies)


def test_schemathesis_finds_no_server_error_and_no_schema_violation(fuzz: Fuzz) -> None:
    app = create_app(fuzz.settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results)
    # Loaded from the app, schemathesis leaves out the operation serving the document itself.
    assert len(operations) == 29

    for operation in operations:

        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(case=_strategy(operation, fuzz), who=_who(fuzz, operation.path))
        def run(case: Any, who: dict[str, str]) -> None:
            headers = {
                k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
            }
            case.headers = {**headers, **who}
            response = case.call()
            case.validate_response(response, checks=CHECKS)
            fuzz.statuses[(case.operation.label, response.status_code)] += 1

        run()

    assert fuzz.cases >= MINIMUM_CASES, fuzz.statuses


# --- inputs that once caused server errors (regressions) ---------------------------------------


def test_appointment_on_the_last_representable_day(api: Api) -> None:
    payload = {
        "doctorUid": "d",
        "patientUid": "p",
        "appointmentDate": "9999-12-31",
        "startTime": "10:00",
        "endTime": "09:00",
        "status": "CONFIRMED",
    }
    response = api.client.put("/api/admin/appointments/a1", json=payload, headers=api.admin())
    conforms(response, APPOINTMENTS, "put", 400)


def test_timezone_naming_a_tzdata_folder(api: Api) -> None:
    payload = {
        "doctorUid": "d",
        "patientUid": "p",
        "appointmentDate": api.clock.day(),
        "startTime": "10:00",
        "endTime": "10:30",
        "timezone": "America",
        "status": "CONFIRMED",
    }
    response = api.client.put("/api/admin/appointments/a1", json=payload, headers=api.admin())
    conforms(response, APPOINTMENTS, "put", 400)


@pytest.mark.parametrize("path", [LIST, ADMIN_LIST])
def test_limit_of_a_superscript_digit(api: Api, path: str) -> None:
    headers = api.admin() if path == ADMIN_LIST else api.auth("doc")
    response = api.client.get(path, params={"limit": "²"}, headers=headers)
    conforms(response, path, "get", 400)


def test_cursor_with_an_out_of_range_time(api: Api, request: pytest.FixtureRequest) -> None:
    response = api.client.get(
        LIST, params={"cursor": cursor_of(2**63, "x")}, headers=api.auth("doc")
    )
    assert response.status_code < 500
    conforms(response, LIST, "get")


@pytest.mark.parametrize(
    ("method", "path", "url", "payload"),
    [
        ("post", INITIATE, INITIATE, {"appointmentId": "a\x00"}),
        ("get", DETAILS, "/api/video-calls/a%00", None),
        ("get", TOKEN, "/api/video-calls/token/a%00", None),
        ("patch", STATUS, "/api/video-calls/a%00/status", {"action": "join"}),
        ("get", LIST, f"{LIST}?cursor={cursor_of(1, 'a' + chr(0))}", None),
        ("put", USERS, "/api/admin/users/u", {"firstName": "a\x00"}),
    ],
)
def test_nul_characters_are_a_client_error(
    api: Api,
    request: pytest.FixtureRequest,
    method: str,
    path: str,
    url: str,
    payload: Any,
) -> None:
    headers = api.admin() if path == USERS else api.auth("doc")
    response = api.client.request(method, url, json=payload, headers=headers)
    assert response.status_code < 500
    conforms(response, path, method)


def test_appointment_date_in_week_form(api: Api) -> None:
    payload = {
        "doctorUid": "d",
        "patientUid": "p",
        "appointmentDate": "2024-W01-1",
        "startTime": "10:00",
        "endTime": "10:30",
        "status": "CONFIRMED",
    }
    response = api.client.put("/api/admin/appointments/a1", json=payload, headers=api.admin())
    conforms(response, APPOINTMENTS, "put", 400)


def test_uid_with_a_trailing_newline(api: Api) -> None:
    response = api.client.put("/api/admin/users/x%0A", json={"firstName": "X"}, headers=api.admin())
    conforms(response, USERS, "put", 400)


def test_details_of_a_call_named_initiate_is_the_documented_405(seeded: Api) -> None:
    # Schemathesis once sent ref=initiate: the answer must be one the document states.
    response = seeded.client.get("/api/video-calls/initiate", headers=seeded.auth("doc"))
    body = conforms(response, "/api/video-calls/{ref}", "get", 405)
    assert body["error"] == "method_not_allowed"
    assert response.headers["allow"] == "POST"
