"""Every error the API documents: right status, JSON `{message, error}`, nothing written."""

from __future__ import annotations

import logging

import jwt
import pytest
from starlette.testclient import TestClient

from harness.env import base_env
from service import calls
from service.app import create_app
from service.clock import now_s
from service.config import load_settings
from service.logs import JsonFormatter
from service.store import uow
from service.store.models import VideoCall
from tests.api.conftest import Api


def assert_error(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in response.text  # type: ignore[attr-defined]
    return body  # type: ignore[no-any-return]


def call_count() -> int:
    return uow.run(lambda: VideoCall.select().count())


# --- 400 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,code",
    [
        ({}, "missing_appointment_id"),
        ({"appointmentId": ""}, "missing_appointment_id"),
        ({"appointmentId": 42}, "invalid_body"),
        ({"appointmentId": ["appt1"]}, "invalid_body"),
    ],
)
def test_initiate_rejects_bad_bodies(seeded: Api, body: dict[str, object], code: str) -> None:
    response = seeded.client.post(
        "/api/video-calls/initiate", json=body, headers=seeded.auth("doc")
    )
    assert_error(response, 400, code)
    assert call_count() == 0


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"", b"\xff\xfe"])
def test_malformed_json_is_400(seeded: Api, raw: bytes) -> None:
    response = seeded.client.post(
        "/api/video-calls/initiate",
        content=raw,
        headers={**seeded.auth("doc"), "Content-Type": "application/json"},
    )
    assert_error(response, 400, "invalid_json")
    assert call_count() == 0


def test_initiate_needs_a_confirmed_or_in_progress_appointment(seeded: Api) -> None:
    seeded.put_appointment("pending", status="PENDING")
    body = assert_error(seeded.initiate("doc", "pending"), 400, "appointment_not_active")
    assert body["currentStatus"] == "PENDING"
    assert call_count() == 0


@pytest.mark.parametrize(
    "action,code", [("dance", "unknown_action"), (None, "missing_action"), (3, "unknown_action")]
)
def test_status_rejects_unknown_actions(seeded: Api, action: object, code: str) -> None:
    seeded.initiate("doc", "appt1")
    response = seeded.client.patch(
        "/api/video-calls/appt1/status", json={"action": action}, headers=seeded.auth("doc")
    )
    assert_error(response, 400, code)


@pytest.mark.parametrize(
    "params",
    [
        {"status": "DONE"},
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "x"},
        {"cursor": "!!!"},
        {"cursor": "WzFd"},
    ],
)
def test_list_rejects_bad_queries(seeded: Api, params: dict[str, str]) -> None:
    response = seeded.client.get("/api/video-calls", params=params, headers=seeded.auth("doc"))
    body = response.json()
    assert response.status_code == 400
    assert body["error"] in ("invalid_query", "invalid_cursor")


def test_stats_rejects_bad_dates(seeded: Api) -> None:
    response = seeded.client.get(
        "/api/video-calls/stats", params={"from": "yesterday"}, headers=seeded.auth("doc")
    )
    assert_error(response, 400, "invalid_query")


# --- 401 ------------------------------------------------------------------------------------


def test_missing_and_malformed_authorization(seeded: Api) -> None:
    assert_error(seeded.client.get("/api/video-calls"), 401, "missing_token")
    assert_error(
        seeded.client.get("/api/video-calls", headers={"Authorization": "Basic abc"}),
        401,
        "missing_token",
    )
    assert_error(
        seeded.client.get("/api/video-calls", headers={"Authorization": "Bearer not.a.jwt"}),
        401,
        "invalid_token",
    )


def test_expired_and_forged_tokens(seeded: Api) -> None:
    now = now_s()
    claims = {
        "sub": "doc",
        "iat": now - 7200,
        "exp": now - 3600,
        "iss": "videocalls-dev",
        "aud": "videocalls-dev",
    }
    expired = jwt.encode(claims, seeded.settings.dev_auth_secret, algorithm="HS256")
    assert_error(
        seeded.client.get("/api/video-calls", headers={"Authorization": f"Bearer {expired}"}),
        401,
        "expired_token",
    )
    claims["exp"] = now + 3600
    forged = jwt.encode(claims, "x" * 64, algorithm="HS256")
    assert_error(
        seeded.client.post(
            "/api/video-calls/initiate",
            json={"appointmentId": "appt1"},
            headers={"Authorization": f"Bearer {forged}"},
        ),
        401,
        "invalid_token",
    )
    assert call_count() == 0


# --- 403 ------------------------------------------------------------------------------------


def test_outsiders_are_refused_everywhere(seeded: Api) -> None:
    call_id = seeded.initiate("doc", "appt1").json()["videoCall"]["id"]
    assert_error(seeded.initiate("outsider", "appt1"), 403, "not_participant")
    for ref in ("appt1", call_id):
        assert_error(
            seeded.client.get(f"/api/video-calls/token/{ref}", headers=seeded.auth("outsider")),
            403,
            "not_participant",
        )
        assert_error(seeded.report("outsider", ref, "cancel"), 403, "not_participant")
        assert_error(
            seeded.client.get(f"/api/video-calls/{ref}", headers=seeded.auth("outsider")),
            403,
            "not_participant",
        )


def test_inactive_accounts_get_no_token(seeded: Api) -> None:
    seeded.put_user("pat", isActive=False)
    assert_error(seeded.initiate("doc", "appt1"), 403, "account_inactive")
    assert call_count() == 0


# --- 404 ------------------------------------------------------------------------------------


def test_unknown_appointment_and_call(seeded: Api) -> None:
    # A participant's appointment without a call yet is a 404 ...
    assert_error(
        seeded.client.get("/api/video-calls/token/appt1", headers=seeded.auth("doc")),
        404,
        "video_call_not_found",
    )
    assert_error(seeded.report("doc", "appt1", "join"), 404, "video_call_not_found")
    # ... an unknown id is nobody's: the stranger's 403, so no id's existence leaks.
    assert_error(seeded.initiate("doc", "nope"), 403, "not_participant")
    assert_error(seeded.report("doc", "nope", "join"), 403, "not_participant")
    assert_error(
        seeded.client.get("/api/video-calls/nope", headers=seeded.auth("doc")),
        403,
        "not_participant",
    )
    assert_error(seeded.client.get("/no/such/route"), 404, "not_found")


# --- 409 ------------------------------------------------------------------------------------


@pytest.mark.presence_from_clients
def test_transitions_outside_the_rules_conflict(seeded: Api) -> None:
    seeded.initiate("doc", "appt1")
    body = assert_error(seeded.report("doc", "appt1", "end"), 409, "invalid_transition")
    assert body["currentStatus"] == "SCHEDULED"
    seeded.report("doc", "appt1", "cancel")
    for action in ("join", "start", "end", "failed"):
        body = assert_error(seeded.report("doc", "appt1", action), 409, "invalid_transition")
        assert body["currentStatus"] == "CANCELLED"
    body = assert_error(
        seeded.client.get("/api/video-calls/token/appt1", headers=seeded.auth("doc")),
        409,
        "call_closed",
    )
    assert body["currentStatus"] == "CANCELLED"
    assert_error(seeded.initiate("doc", "appt1"), 409, "call_closed")


# --- 413 ------------------------------------------------------------------------------------


def test_bodies_over_64_kib_are_refused(seeded: Api) -> None:
    big = b'{"appointmentId": "appt1", "pad": "' + b"x" * (64 * 1024) + b'"}'
    response = seeded.client.post(
        "/api/video-calls/initiate",
        content=big,
        headers={**seeded.auth("doc"), "Content-Type": "application/json"},
    )
    assert_error(response, 413, "payload_too_large")
    assert call_count() == 0


# --- 500 and 503 --------------------------------------------------------------------------


def test_unexpected_errors_are_generic_500s_logged_without_secrets(
    seeded: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(uid: str, ref: str) -> None:
        raise RuntimeError(f"boom with {seeded.settings.jitsi_app_secret}")

    monkeypatch.setattr(calls, "details", broken)
    with caplog.at_level(logging.ERROR):
        response = seeded.client.get("/api/video-calls/appt1", headers=seeded.auth("doc"))
    body = assert_error(response, 500, "internal_error")
    assert body["message"] == "Internal server error"
    assert seeded.settings.jitsi_app_secret not in response.text
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors
    written = JsonFormatter().format(errors[0])
    assert "boom with [redacted]" in written
    assert seeded.settings.jitsi_app_secret not in written


def test_unreachable_database_is_503(database_url: str) -> None:
    settings = load_settings(base_env(DATABASE_URL="postgresql://nobody@127.0.0.1:9/none"))
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        from service.auth.dev import mint_dev_token

        token = mint_dev_token(settings, "doc")
        response = client.post(
            "/api/video-calls/initiate",
            json={"appointmentId": "appt1"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert_error(response, 503, "database_unavailable")


def test_probes(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").json() == {"status": "ready"}


# --- 405 ------------------------------------------------------------------------------------

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def test_a_wrong_method_on_a_known_path_is_405_with_allow(seeded: Api) -> None:
    # The served OpenAPI document is the list of known paths and their methods.
    paths = seeded.client.get("/openapi.json").json()["paths"]
    tried = 0
    for path, item in paths.items():
        documented = {m for m in item if m in HTTP_METHODS}
        concrete = path.replace("{ref}", "appt1").replace("{uid}", "doc").replace("{id}", "appt1")
        for method in set(HTTP_METHODS) - documented:
            response = seeded.client.request(method.upper(), concrete, headers=seeded.auth("doc"))
            assert_error(response, 405, "method_not_allowed")
            allowed = {m.strip().lower() for m in response.headers["allow"].split(",")}
            assert documented <= allowed <= documented | {"head"}, (method, path, allowed)
            tried += 1
    assert tried > 40


def test_get_initiate_is_405_not_a_call_named_initiate(seeded: Api) -> None:
    response = seeded.client.get("/api/video-calls/initiate", headers=seeded.auth("doc"))
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
