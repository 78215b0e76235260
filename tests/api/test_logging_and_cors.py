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
