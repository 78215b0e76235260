"""The console's admin views, its page and /metrics, in-process on SQLite and PostgreSQL.

The frozen clock is set to noon (UTC) of the real day, so a day's appointments can be laid
out around "now" without crossing midnight; every date is derived from that clock.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from harness.env import base_env
from harness.eventstream import Stream, consultation, signed
from service import sweeper
from service.api.console import CSP
from service.app import create_app
from service.config import load_settings
from service.wire.base import iso
from tests.api.conftest import Api
from tests.api.test_openapi import conforms
from tests.clock import DAY_MS, FrozenClock, shift_days

HOUR = 3_600_000
MINUTE = 60_000
DAY = "/api/admin/console/day"
CALL = "/api/admin/console/calls/{ref}"
DOCTORS = "/api/admin/console/doctors"
HEALTH = "/api/admin/console/health"


@pytest.fixture
def noon(api: Api, clock: FrozenClock) -> Api:
    clock.set(clock.ms // DAY_MS * DAY_MS + 12 * HOUR)
    for uid, first in (("doc", "Ada"), ("doc2", "Bob"), ("pat", "Pat"), ("pat2", "Sam")):
        api.put_user(uid, firstName=first)
    return api


def book(api: Api, appointment_id: str, start: str, end: str, **fields: Any) -> None:
    api.put_appointment(
        appointment_id,
        appointmentDate=api.clock.day("UTC"),
        startTime=start,
        endTime=end,
        timezone="UTC",
        **fields,
    )


def post(api: Api, event: dict[str, Any]) -> None:
    body, headers = signed(api.settings.prosody_events_secrets[0], event)
    response = api.client.post("/api/prosody/events", content=body, headers=headers)
    assert response.status_code == 204, response.text


def get(api: Api, path: str, template: str, **params: str) -> Any:
    return conforms(api.client.get(path, params=params, headers=api.admin()), template, "get", 200)


def room(appointment_id: str) -> str:
    return f"appointment_{appointment_id}"


def test_the_day_grouped_by_what_needs_attention(noon: Api) -> None:
    api, now = noon, noon.clock.ms
    stream = Stream()
    book(api, "waiting", "11:50", "12:30")
    assert api.initiate("doc", "waiting").status_code == 200
    post(api, stream.created(room("waiting"), "m1", now - 5 * MINUTE))
    post(api, stream.joined(room("waiting"), "m1", "s1", "pat", now - 4 * MINUTE))

    book(api, "running", "11:30", "12:30")
    assert api.initiate("doc", "running").status_code == 200
    post(api, stream.created(room("running"), "m2", now - 20 * MINUTE))
    post(api, stream.joined(room("running"), "m2", "s2", "doc", now - 20 * MINUTE))
    post(api, stream.joined(room("running"), "m2", "s3", "pat", now - 18 * MINUTE))

    book(api, "soon", "12:10", "12:40")
    book(api, "later", "15:00", "15:30", doctorUid="doc2", patientUid="pat2")
    # Events of a past appointment arrive before its no-show grace is up (else: NO_SHOW).
    book(api, "done", "11:00", "11:55")
    assert api.initiate("doc", "done").status_code == 200
    for event in consultation(stream, room("done"), "doc", "pat", now - 50 * MINUTE):
        post(api, event)
    book(api, "missed", "09:00", "09:30")
    book(api, "cancelled", "16:00", "16:30", status="CANCELLED")
    book(api, "failed", "11:00", "13:00")
    assert api.initiate("doc", "failed").status_code == 200
    assert api.report("doc", "failed", "failed").status_code == 200

    body = get(api, DAY, DAY, date=api.clock.day("UTC"))
    groups = {item["appointmentId"]: item["attention"] for item in body["appointments"]}
    assert groups == {
        "waiting": "waiting",
        "running": "in_progress",
        "soon": "starting_soon",
        "later": "upcoming",
        "done": "completed",
        "missed": "missed",
        "cancelled": "cancelled",
        "failed": "failed",
    }
    assert body["counts"] == {
        "waiting": 1,
        "in_progress": 1,
        "starting_soon": 1,
        "upcoming": 1,
        "completed": 1,
        "missed": 1,
        "failed": 1,
        "cancelled": 1,
    }
    by_id = {item["appointmentId"]: item for item in body["appointments"]}
    assert by_id["waiting"]["present"] == ["patient"]
    assert by_id["waiting"]["waitingSince"] == iso(now - 4 * MINUTE)
    assert by_id["waiting"]["patient"] == {"uid": "pat", "name": "Pat Test"}
    assert by_id["running"]["videoCall"]["startedAt"] == iso(now - 18 * MINUTE)
    assert by_id["done"]["videoCall"]["duration"] == 600
    assert by_id["missed"]["missing"] == "both"
    assert by_id["missed"]["videoCall"] is None
    # Ordered by start time; every doctor of the day is offered for the filter.
    assert [i["startTime"] for i in body["appointments"]] == sorted(
        i["startTime"] for i in body["appointments"]
    )
    assert [d["uid"] for d in body["doctors"]] == ["doc", "doc2"]

    only = get(api, DAY, DAY, date=api.clock.day("UTC"), doctor="doc2")
    assert [i["appointmentId"] for i in only["appointments"]] == ["later"]
    assert only["doctor"] == "doc2"
    assert [d["uid"] for d in only["doctors"]] == ["doc", "doc2"]
    tomorrow = get(api, DAY, DAY, date=shift_days(api.clock.day("UTC"), 1))
    assert tomorrow["appointments"] == []
    # Without a date: today (UTC).
    assert get(api, DAY, DAY)["date"] == api.clock.day("UTC")


def test_a_call_with_sessions_transitions_and_audit(noon: Api) -> None:
    api, now = noon, noon.clock.ms
    book(api, "c1", "11:00", "12:00")
    call_id = api.initiate("doc", "c1").json()["videoCall"]["id"]
    t0 = now - 30 * MINUTE
    for event in consultation(Stream(), room("c1"), "doc", "pat", t0):
        post(api, event)
    body = get(api, f"/api/admin/console/calls/{call_id}", CALL)
    assert body["videoCall"]["id"] == call_id
    assert body["videoCall"]["status"] == "COMPLETED"
    assert [(s["role"], s["joinedAt"], s["leftAt"], s["repaired"]) for s in body["sessions"]] == [
        ("doctor", iso(t0 + 1_000), iso(t0 + 671_000), False),
        ("patient", iso(t0 + 61_000), iso(t0 + 661_000), False),
    ]
    assert [(t["from"], t["to"], t["actor"]) for t in body["transitions"]] == [
        ("SCHEDULED", "IN_PROGRESS", "prosody"),
        ("IN_PROGRESS", "COMPLETED", "prosody"),
    ]
    actions = [a["action"] for a in body["audit"]]
    assert actions[0] == "call.created"
    assert actions.count("event.received") == 6
    # The axis spans every session, and the appointment (11:00-12:00) up to 30 min around.
    assert body["axis"] == {"from": iso(t0 + 1_000 - 30 * MINUTE), "to": iso(now)}
    by_appointment = get(api, "/api/admin/console/calls/c1", CALL)
    assert by_appointment["videoCall"]["id"] == call_id

    missing = api.client.get("/api/admin/console/calls/nope", headers=api.admin())
    assert conforms(missing, CALL, "get", 404)["error"] == "video_call_not_found"
    bad = api.client.get("/api/admin/console/calls/a%20b", headers=api.admin())
    assert conforms(bad, CALL, "get", 400)["error"] == "invalid_id"


def test_repaired_sessions_are_marked(noon: Api) -> None:
    api, now = noon, noon.clock.ms
    book(api, "r1", "11:00", "13:00")
    call_id = api.initiate("doc", "r1").json()["videoCall"]["id"]
    stream = Stream()
    post(api, stream.created(room("r1"), "m1", now - 10 * MINUTE))
    post(api, stream.joined(room("r1"), "m1", "s1", "doc", now - 9 * MINUTE))
    # Prosody restarts: the open session is closed by the service, and marked so.
    post(api, Stream().started(now - MINUTE))
    body = get(api, f"/api/admin/console/calls/{call_id}", CALL)
    assert [(s["repaired"], s["endReason"]) for s in body["sessions"]] == [
        (True, "prosody_restart")
    ]
    health = get(api, HEALTH, HEALTH)
    assert health["repairs"] == {"total": 1, "byReason": {"prosody_restart": 1}}


def test_doctor_totals_and_minutes_per_day(noon: Api) -> None:
    api, now = noon, noon.clock.ms
    today = api.clock.day("UTC")
    book(api, "t1", "11:00", "11:55")
    api.initiate("doc", "t1")
    # The patient is first this time (the builder's first session is `pat`): a 60 s wait.
    for event in consultation(Stream(), room("t1"), "pat", "doc", now - 50 * MINUTE):
        post(api, event)
    book(api, "t2", "08:00", "08:30")
    api.initiate("doc", "t2")
    sweeper.sweep(api.settings)  # t2 ended hours ago and nobody came: NO_SHOW
    book(api, "t3", "09:00", "09:30", doctorUid="doc2")

    body = get(api, DOCTORS, DOCTORS, **{"from": shift_days(today, -2), "to": today})
    assert body["doctors"] == [
        {
            "uid": "doc",
            "name": "Ada Test",
            "calls": 2,
            "completed": 1,
            "noShows": 1,
            "minutes": 10.0,
            "averageDuration": 600.0,
            "noShowRate": 0.5,
            "averagePatientWait": 60.0,
        }
    ]
    assert body["days"] == [
        {"date": shift_days(today, -2), "minutes": 0.0},
        {"date": shift_days(today, -1), "minutes": 0.0},
        {"date": today, "minutes": 10.0},
    ]
    assert get(api, DOCTORS, DOCTORS, doctor="doc2")["doctors"] == []
    default = get(api, DOCTORS, DOCTORS)
    assert (default["from"], default["to"]) == (shift_days(today, -29), today)
    assert len(default["days"]) == 30


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (DAY, lambda today: {"date": "tomorrow"}),
        (DAY, lambda today: {"date": today[:8] + "32"}),  # not a calendar date
        (DAY, lambda today: {"doctor": "a b"}),
        (DOCTORS, lambda today: {"from": shift_days(today, 1), "to": today}),
        (DOCTORS, lambda today: {"from": shift_days(today, -366), "to": today}),
    ],
)
def test_bad_queries_are_400(noon: Api, path: str, params: Callable[[str], dict[str, str]]) -> None:
    query = params(noon.clock.day("UTC"))
    response = noon.client.get(path, params=query, headers=noon.admin())
    assert conforms(response, path, "get", 400)["error"] == "invalid_query"


def test_health_of_prosody_and_the_sweeper(noon: Api) -> None:
    api, now = noon, noon.clock.ms
    before = get(api, HEALTH, HEALTH)
    assert before["prosodyHosts"] == []
    assert before["sweeper"]["lastRunAt"] is None
    assert before["sweeper"]["overdue"] is True

    stream = Stream()
    post(api, stream.started(now - 10 * MINUTE))
    post(api, stream.snapshot(now - 9 * MINUTE, []))
    stream.seq += 2  # two events lost on the way
    post(api, stream.snapshot(now - 8 * MINUTE, []))
    sweeper.sweep(api.settings)
    body = get(api, HEALTH, HEALTH)
    assert body["prosodyHosts"] == [
        {
            "host": "muc.meet.jitsi",
            "lastEventAt": iso(now - 8 * MINUTE),
            "lastEventType": "rooms.snapshot",
            "bootId": stream.boot_id,
            "lastSeq": 5,
            "events": 3,
            "seqGaps": 2,
            "restarts": 1,
        }
    ]
    assert body["sweeper"] == {
        "intervalSeconds": api.settings.sweep_interval,
        "lastRunAt": iso(now),
        "derived": 0,
        "noShows": 0,
        "overdue": False,
    }
    # Events older than the window no longer count; the host and its last event remain.
    api.clock.advance(DAY_MS)
    later = get(api, HEALTH, HEALTH)
    assert later["prosodyHosts"][0]["events"] == 0
    assert later["prosodyHosts"][0]["seqGaps"] == 0
    assert later["sweeper"]["overdue"] is True


@pytest.mark.parametrize("path", [DAY, "/api/admin/console/calls/x", DOCTORS, HEALTH])
def test_views_need_the_admin_key(api: Api, path: str) -> None:
    template = CALL if "/calls/" in path else path
    missing = api.client.get(path)
    assert conforms(missing, template, "get", 401)["error"] == "missing_token"
    wrong = api.client.get(path, headers={"Authorization": f"Bearer {secrets.token_hex(32)}"})
    assert conforms(wrong, template, "get", 403)["error"] == "invalid_admin_key"


def test_views_answer_404_while_the_admin_api_is_disabled(database_url: str) -> None:
    settings = load_settings(base_env(DATABASE_URL=database_url, ADMIN_API_KEY=""))
    with TestClient(create_app(settings)) as client:
        response = client.get(DAY, headers={"Authorization": "Bearer anything"})
    assert conforms(response, DAY, "get", 404)["error"] == "admin_api_disabled"


def test_the_page_is_self_contained_under_a_strict_policy(api: Api) -> None:
    page = api.client.get("/console")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP
    assert "default-src 'none'" in CSP and "'unsafe-inline'" not in CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    texts = [page.text]
    for name, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
        asset = api.client.get(f"/console/{name}")
        assert asset.status_code == 200
        assert asset.headers["content-type"].startswith(kind)
        assert asset.headers["x-content-type-options"] == "nosniff"
        texts.append(asset.text)
    for text in texts:
        # Nothing from elsewhere: the only absolute URL is the SVG namespace, a name.
        urls = set(re.findall(r"https?://[^\s\"'`)]+", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, urls
        assert "@import" not in text and "@font-face" not in text
    # No inline script or style the policy would block.
    assert "<script>" not in page.text and "style=" not in page.text and "<style" not in page.text
    # The key is kept in sessionStorage only: never localStorage, a cookie or a URL.
    script = texts[1]
    assert "sessionStorage" in script
    assert "localStorage" not in script and "document.cookie" not in script


def test_totals_up_to_the_first_representable_days(noon: Api) -> None:
    # Found by schemathesis: the default range once reached before year 1.
    first_days = date.min + timedelta(days=3)
    body = get(noon, DOCTORS, DOCTORS, to=first_days.isoformat())
    assert (body["from"], len(body["days"])) == (date.min.isoformat(), 4)


def test_metrics_need_the_token(database_url: str) -> None:
    token = secrets.token_hex(32)
    settings = load_settings(base_env(DATABASE_URL=database_url, METRICS_TOKEN=token))
    with TestClient(create_app(settings)) as client:
        client.get("/api/video-calls/some-id")  # a 401, counted under its template
        for headers in ({}, {"Authorization": f"Bearer {secrets.token_hex(32)}"}):
            response = client.get("/metrics", headers=headers)
            assert conforms(response, "/metrics", "get", 401)["error"] in (
                "missing_token",
                "invalid_token",
            )
        ok = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain")
    assert 'route="/api/video-calls/{ref}"' in ok.text
    assert "some-id" not in ok.text
    assert 'videocalls_calls{status="SCHEDULED"}' in ok.text
    assert "_created" not in ok.text


def test_metrics_answer_404_while_disabled(api: Api) -> None:
    response = api.client.get("/metrics", headers={"Authorization": "Bearer x"})
    assert conforms(response, "/metrics", "get", 404)["error"] == "metrics_disabled"
