"""GET /metrics of a real two-worker server: every worker's samples in every scrape."""

from __future__ import annotations

import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

from harness.clock import midday_window, real_now_ms
from harness.env import base_env
from harness.eventstream import Stream, consultation
from service.config import load_settings
from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.test_concurrency import seed
from tests.e2e.test_events_e2e import ROOM, initiate, send

USERS_PUT = 40


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample, its labels given in any order (0 if absent)."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if not match or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
        if found == labels:
            return float(match[3])
    return 0.0


def scrape(server: Server, token: str) -> str:
    # A new connection each time, so that successive scrapes reach either worker.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_two_workers_report_together(database_url: str, tmp_path: Path) -> None:
    token = secrets.token_hex(32)
    env = base_env(
        DATABASE_URL=database_url,
        METRICS_TOKEN=token,
        SWEEP_INTERVAL="1",
        TMPDIR=str(tmp_path),  # where `serve` makes the workers' shared metrics folder
    )
    server = start_server(env, workers=2)
    try:
        (shared,) = tmp_path.glob("videocalls-metrics-*")
        tokens = seed(server)
        initiate(server, tokens)
        admin = {"Authorization": f"Bearer {load_settings(env).admin_api_key}"}
        # Today in UTC, so that the calls gauge (today's appointments) counts it.
        today = datetime.fromtimestamp(real_now_ms() / 1000, UTC).date().isoformat()
        r = httpx.put(
            f"{server.url}/api/admin/appointments/today1",
            json={
                "doctorUid": "doc",
                "patientUid": "pat",
                "appointmentDate": today,
                "startTime": "00:00",
                "endTime": "23:59",
                "timezone": "UTC",
                "status": "CONFIRMED",
            },
            headers=admin,
        )
        assert r.status_code == 200, r.text
        r = httpx.post(
            f"{server.url}/api/video-calls/initiate",
            json={"appointmentId": "today1"},
            headers={"Authorization": tokens["doc"]},
        )
        assert r.status_code == 200, r.text

        secret = env["PROSODY_EVENTS_SECRET"]
        events = consultation(Stream(), ROOM, "doc", "pat", real_now_ms() - 700_000)
        for event in events:
            assert send(server.url, secret, event) == 204
        assert send(server.url, secret, events[0]) == 204  # a repeat
        assert send(server.url, "whsec_" + "ZmFrZQ" * 8, Stream().started(real_now_ms())) == 401

        # Many connections at once, so that both workers answer some of them.
        def put_user(n: int) -> int:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                response = client.put(
                    f"/api/admin/users/user{n}", json={"firstName": "N"}, headers=admin
                )
                return response.status_code

        with ThreadPoolExecutor(20) as pool:
            assert list(pool.map(put_user, range(USERS_PUT))) == [200] * USERS_PUT
        assert httpx.get(f"{server.url}/no/such/path/abc123").status_code == 404

        # Without the token, or with a wrong one: 401, and no metrics in the body.
        for headers in ({}, {"Authorization": f"Bearer {secrets.token_hex(32)}"}):
            response = httpx.get(f"{server.url}/metrics", headers=headers)
            assert response.status_code == 401
            assert "videocalls_" not in response.text

        deadline = real_now_ms() + 15_000
        text = scrape(server, token)
        while sample(text, "videocalls_sweeps_total", result="ran") < 1:
            assert real_now_ms() < deadline, "no sweep counted within 15 s"
            text = scrape(server, token)

        route = "/api/admin/users/{uid}"
        # Every scrape, whichever worker answers, counts every worker's requests.
        for _ in range(6):
            text = scrape(server, token)
            assert (
                sample(
                    text, "videocalls_http_requests_total", route=route, method="PUT", status="200"
                )
                == USERS_PUT + 2  # seed() puts doc and pat
            )
        assert (
            sample(
                text,
                "videocalls_http_requests_total",
                route="unmatched",
                method="GET",
                status="404",
            )
            == 1
        )
        assert (
            sample(
                text, "videocalls_http_requests_total", route="/metrics", method="GET", status="401"
            )
            == 2
        )
        assert sample(text, "videocalls_http_request_duration_seconds_count", route=route) == (
            USERS_PUT + 2
        )
        assert sample(text, "videocalls_events_received_total", source="v1", result="new") == len(
            events
        )
        assert (
            sample(text, "videocalls_events_received_total", source="v1", result="duplicate") == 1
        )
        assert sample(text, "videocalls_events_received_total", source="v1", result="rejected") == 1
        assert sample(text, "videocalls_event_lag_seconds_count") == len(events)
        # The consultation ended 28 s before it was sent: no lag sample is under 10 s.
        assert sample(text, "videocalls_event_lag_seconds_bucket", le="10.0") == 0
        race_today = midday_window(real_now_ms())["appointmentDate"] == today
        assert sample(text, "videocalls_calls", status="SCHEDULED") == 1
        assert sample(text, "videocalls_calls", status="COMPLETED") == (1 if race_today else 0)
        assert sample(text, "videocalls_calls", status="NO_SHOW") == 0
        # Route templates only: no id, user or path of a request appears in a label.
        for value in ("race1", "today1", "user1", "abc123", "/no/such"):
            assert value not in text
        # Both workers write their samples there.
        assert len({f.name.rsplit("_", 1)[-1] for f in shared.glob("counter_*.db")}) == 2
    finally:
        stop_server(server)
    # Stopped (SIGTERM), `serve` removes the folder.
    assert not shared.exists()


def test_metrics_answer_404_while_disabled(server: Server) -> None:
    response = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer x"})
    assert response.status_code == 404
    assert response.json()["error"] == "metrics_disabled"


def test_one_worker_counts_in_the_shared_folder_too(database_url: str, tmp_path: Path) -> None:
    """One worker runs inside `serve` itself: the folder is exported before it starts."""
    token = secrets.token_hex(32)
    env = base_env(DATABASE_URL=database_url, METRICS_TOKEN=token, TMPDIR=str(tmp_path))
    server = start_server(env, workers=1)
    try:
        (shared,) = tmp_path.glob("videocalls-metrics-*")
        for _ in range(3):
            assert httpx.get(f"{server.url}/healthz").status_code == 200
        text = scrape(server, token)
        assert (
            sample(
                text, "videocalls_http_requests_total", route="/healthz", method="GET", status="200"
            )
            == 3
        )
        assert list(shared.glob("counter_*.db"))
    finally:
        stop_server(server)
    assert server.process.returncode == 143  # SIGTERM, left through `serve`'s cleanup
    assert not shared.exists()
