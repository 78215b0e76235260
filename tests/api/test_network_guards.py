"""What a hostile network meets at the edge (issue 33): security headers on every answer,
/readyz's write probe at most once a second, wrong admin keys logged and throttled per address.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from harness.env import base_env
from service.api.health import PROBE_INTERVAL_MS
from service.api.throttle import ALLOWED_FAILURES, WINDOW_MS
from service.config import ConfigError, load_settings
from service.store import db, uow
from tests.api.conftest import Api

SECURITY = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def assert_secured(response: object, cache_control: str = "no-store") -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers.get("x-content-type-options") == "nosniff", headers
    assert headers.get("referrer-policy") == "no-referrer", headers
    assert headers.get("cache-control") == cache_control, headers
    # Exactly one of each: the middleware replaces, never doubles, a route's own.
    for name in SECURITY:
        assert len(headers.get_list(name)) == 1, (name, headers)


def test_every_kind_of_answer_carries_the_headers(call: Api) -> None:
    client = call.client
    wrong = {"Authorization": "Bearer " + "x" * 64}
    answers = [
        client.get("/healthz"),
        client.get("/readyz"),
        client.get("/openapi.json"),
        call.initiate("doc", "appt1"),  # a Jitsi token inside
        client.get("/api/video-calls", headers=call.auth("doc")),
        client.get("/api/video-calls"),  # 401
        client.get("/api/admin/video-calls", headers=wrong),  # 403
        client.get("/no/such/path"),  # the router's 404
        client.delete("/healthz"),  # 405
        client.post("/api/video-calls/initiate", content=b"x" * 70_000),  # 413 at the edge
        client.post("/api/video-calls/initiate", content=b"{", headers=call.auth("doc")),  # 400
    ]
    statuses = {response.status_code for response in answers}
    assert {200, 400, 401, 403, 404, 405, 413} <= statuses
    for response in answers:
        assert_secured(response)
    # The console's static files hold no data and keep their own revalidation.
    assert_secured(client.get("/console"), cache_control="no-cache")


def test_an_unhandled_error_carries_the_headers(
    seeded: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("service.calls.initiate", boom)
    response = seeded.initiate("doc", "appt1")
    assert response.status_code == 500
    assert_secured(response)


def test_a_flood_of_readyz_writes_once_a_second(api: Api) -> None:
    def writes() -> int:
        database: Any = db.current()
        with uow.read():
            row = database.execute_sql("SELECT writes FROM readiness_probe WHERE id = 1")
            return int(row.fetchone()[0])

    before = writes()
    for _ in range(200):
        assert api.client.get("/readyz").status_code == 200
    assert writes() - before == 1
    # Within the second: still the same answer, no write.
    api.clock.advance(PROBE_INTERVAL_MS - 1)
    assert api.client.get("/readyz").status_code == 200
    assert writes() - before == 1
    # A second on, the next call probes again (and the flood after it does not).
    api.clock.advance(1)
    for _ in range(50):
        assert api.client.get("/readyz").status_code == 200
    assert writes() - before == 2


def test_wrong_admin_keys_are_logged_and_throttled_per_address(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = {"Authorization": "Bearer " + "y" * 64}
    with caplog.at_level(logging.WARNING, logger="service.api"):
        for _ in range(ALLOWED_FAILURES):
            assert api.client.get("/api/admin/video-calls", headers=wrong).status_code == 403
        rejected = [r for r in caplog.records if r.getMessage() == "admin key rejected"]
        assert len(rejected) == ALLOWED_FAILURES - 1
        assert all(r.fields["client"] == "127.0.0.1" for r in rejected)  # type: ignore[attr-defined]
        assert "y" * 64 not in caplog.text
        # The address is throttled now: even the right key waits, and the flood is one line.
        for headers in (wrong, wrong, api.admin()):
            throttled = api.client.get("/api/admin/video-calls", headers=headers)
            assert throttled.status_code == 429, throttled.text
            assert throttled.json()["error"] == "too_many_requests"
            assert 1 <= int(throttled.headers["retry-after"]) <= WINDOW_MS // 1000
        started = [r for r in caplog.records if "throttled" in r.getMessage()]
        assert len(started) == 1
    # Another address is not held up by this one's guesses.
    other = TestClient(api.client.app, raise_server_exceptions=False, client=("10.9.8.7", 1))
    assert other.get("/api/admin/video-calls", headers=api.admin()).status_code != 429
    # After the window the address is heard again, with the right key.
    api.clock.advance(WINDOW_MS)
    assert api.client.get("/api/admin/video-calls", headers=api.admin()).status_code == 200


def test_forwarded_allow_ips_is_validated() -> None:
    assert load_settings(base_env()).forwarded_allow_ips == ("127.0.0.1",)
    assert load_settings(
        base_env(FORWARDED_ALLOW_IPS="172.18.0.0/16, ::1")
    ).forwarded_allow_ips == ("172.18.0.0/16", "::1")
    for bad in ("*", "proxy.example", "10.0.0.0/33"):
        with pytest.raises(ConfigError, match="FORWARDED_ALLOW_IPS"):
            load_settings(base_env(FORWARDED_ALLOW_IPS=bad))
