"""Request logs carry no secrets; CORS answers only the configured origins."""

from __future__ import annotations

import json
import logging

import pytest
from starlette.testclient import TestClient

from service.app import create_app
from service.config import load_settings
from service.logs import JsonFormatter, scrub
from tests.api.conftest import Api


def test_one_json_line_per_request_without_tokens(
    seeded: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        auth = seeded.auth("doc")
        body = seeded.initiate("doc", "appt1").json()
        seeded.client.get("/api/video-calls/token/appt1", headers=auth)
    lines = [JsonFormatter().format(r) for r in caplog.records]
    requests = [json.loads(line) for line in lines if '"msg":"request"' in line]
    assert [(r["method"], r["status"]) for r in requests] == [("POST", 200), ("GET", 200)]
    assert all(isinstance(r["ms"], float) and r["request_id"] for r in requests)
    everything = "\n".join(lines)
    assert body["jitsiToken"] not in everything
    assert auth["Authorization"].split()[1] not in everything
    assert "jwt=" not in everything


def test_scrub_removes_token_shaped_text() -> None:
    text = scrub(
        "link https://meet.test/r?jwt=abc.def.ghi Authorization: Bearer eyJhbGciOiJIUzI1NiJ9."
        "eyJzdWIiOiJ4In0.c2lnbmF0dXJl whsec_QUJDREVGR0g= v1,QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    )
    assert "abc.def" not in text
    assert "eyJ" not in text
    assert "QUJDREVGR0g=" not in text
    assert "QUJDREVGR0hJSktM" not in text


def test_cors_allows_only_configured_origins(env: dict[str, str]) -> None:
    settings = load_settings({**env, "CORS_ORIGINS": "https://app.clinic.test"})
    with TestClient(create_app(settings)) as client:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        }
        ok = client.options(
            "/api/video-calls/initiate", headers={"Origin": "https://app.clinic.test", **preflight}
        )
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://app.clinic.test"
        other = client.options(
            "/api/video-calls/initiate", headers={"Origin": "https://evil.test", **preflight}
        )
        assert "access-control-allow-origin" not in other.headers


PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


def _allowed_origin(env: dict[str, str], origin: str) -> str | None:
    with TestClient(create_app(load_settings(env))) as client:
        answer = client.options(
            "/api/video-calls/initiate", headers={"Origin": origin, **PREFLIGHT}
        )
        return answer.headers.get("access-control-allow-origin")


@pytest.mark.parametrize(
    "origin", ["http://localhost:3000", "http://localhost:5173", "http://127.0.0.1:8080"]
)
def test_development_allows_a_local_frontend_by_default(env: dict[str, str], origin: str) -> None:
    assert _allowed_origin({**env, "APP_ENV": "development"}, origin) == origin


@pytest.mark.parametrize(
    "origin",
    ["https://localhost:3000", "http://localhost.evil.test", "http://evil.test", "null"],
)
def test_development_default_is_only_plain_localhost(env: dict[str, str], origin: str) -> None:
    assert _allowed_origin({**env, "APP_ENV": "development"}, origin) is None


def test_cors_origins_replaces_the_development_default(env: dict[str, str]) -> None:
    dev = {**env, "APP_ENV": "development", "CORS_ORIGINS": "https://app.clinic.test"}
    assert _allowed_origin(dev, "http://localhost:3000") is None
    assert _allowed_origin(dev, "https://app.clinic.test") == "https://app.clinic.test"


@pytest.mark.parametrize("app_env", ["production", "test"])
def test_other_environments_allow_no_origin_by_default(env: dict[str, str], app_env: str) -> None:
    settings_env = {**env, "APP_ENV": app_env}
    if app_env == "production":
        settings_env.update(AUTH_MODE="firebase", FIREBASE_PROJECT_ID="clinic-test")
    assert _allowed_origin(settings_env, "http://localhost:3000") is None
