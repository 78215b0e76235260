"""Racing requests against a real server process, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from harness.clock import midday_window, real_now_ms
from service.auth.dev import mint_dev_token
from service.config import load_settings
from service.domain import rules
from service.domain.model import CallStatus
from service.store import uow
from service.store.models import AuditEvent, VideoCall
from tests.e2e.conftest import Server

CONCURRENCY = 30


def put_appointment(server: Server, appointment_id: str) -> None:
    settings = load_settings(server.env)
    r = httpx.put(
        f"{server.url}/api/admin/appointments/{appointment_id}",
        json={
            "doctorUid": "doc",
            "patientUid": "pat",
            **midday_window(real_now_ms()),
            "status": "CONFIRMED",
        },
        headers={"Authorization": f"Bearer {settings.admin_api_key}"},
    )
    assert r.status_code == 200, r.text


def seed(server: Server) -> dict[str, str]:
    settings = load_settings(server.env)
    admin = {"Authorization": f"Bearer {settings.admin_api_key}"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for uid in ("doc", "pat"):
            r = client.put(f"/api/admin/users/{uid}", json={"firstName": uid}, headers=admin)
            assert r.status_code == 200, r.text
    put_appointment(server, "race1")
    return {uid: f"Bearer {mint_dev_token(settings, uid)}" for uid in ("doc", "pat")}


def fire(
    server: Server, requests: list[tuple[str, str, str, dict[str, Any]]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENCY)
    with httpx.Client(base_url=server.url, timeout=60, limits=limits) as client:

        def one(item: tuple[str, str, str, dict[str, Any]]) -> httpx.Response:
            method, path, auth, body = item
            return client.request(method, path, json=body, headers={"Authorization": auth})

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            return list(pool.map(one, requests))


def test_concurrent_initiates_create_one_call(server: Server) -> None:
    tokens = seed(server)
    requests = [
        (
            "POST",
            "/api/video-calls/initiate",
            tokens["doc" if n % 2 else "pat"],
            {"appointmentId": "race1"},
        )
        for n in range(CONCURRENCY)
    ]
    responses = fire(server, requests)
    assert [r.status_code for r in responses] == [200] * CONCURRENCY, [r.text for r in responses]
    ids = {r.json()["videoCall"]["id"] for r in responses}
    assert len(ids) == 1
    assert uow.run(lambda: VideoCall.select().count()) == 1
    created = uow.run(
        lambda: AuditEvent.select().where(AuditEvent.action == "call.created").count()
    )
    assert created == 1
    assert "database is locked" not in server.logs()


@pytest.mark.presence_from_clients
def test_concurrent_reports_leave_an_allowed_state(server: Server) -> None:
    tokens = seed(server)
    with httpx.Client(base_url=server.url) as client:
        r = client.post(
            "/api/video-calls/initiate",
            json={"appointmentId": "race1"},
            headers={"Authorization": tokens["doc"]},
        )
        assert r.status_code == 200
    requests = [
        (
            "PATCH",
            "/api/video-calls/race1/status",
            tokens["doc" if n % 2 else "pat"],
            {"action": "join" if n % 3 else "end"},
        )
        for n in range(CONCURRENCY)
    ]
    responses = fire(server, requests)
    assert {r.status_code for r in responses} <= {200, 409}, [
        line
        for line in server.logs().splitlines()
        if '"status":200' not in line and '"status":409' not in line
    ]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error"] == "invalid_transition"
    call = uow.run(lambda: VideoCall.get(VideoCall.appointment_id == "race1"))
    status = CallStatus(call.status)
    # Joins always land (first-join times set); the status is one the rules can reach.
    assert call.doctor_joined_at is not None and call.patient_joined_at is not None
    assert status in (CallStatus.IN_PROGRESS, CallStatus.COMPLETED)
    assert call.started_at is not None
    if status is CallStatus.COMPLETED:
        assert call.ended_at is not None and call.duration is not None
        assert call.ended_at >= call.started_at
    else:
        assert call.ended_at is None and call.duration is None
    # Every recorded transition is one the table allows, in order.
    transitions = uow.run(
        lambda: [
            e.detail
            for e in AuditEvent.select()
            .where((AuditEvent.action == "call.transition") & (AuditEvent.call_id == call.id))
            .order_by(AuditEvent.id)
        ]
    )
    import json

    seen = CallStatus.SCHEDULED
    for raw in transitions:
        step = json.loads(raw)
        assert step["from"] == seen.value
        assert rules.can_transition(seen, CallStatus(step["to"]))
        seen = CallStatus(step["to"])
    assert seen is status
    assert "database is locked" not in server.logs()
