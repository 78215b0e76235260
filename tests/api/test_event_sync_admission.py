"""The stock event_sync receiver cannot be fed a consultation: only Prosody's network is heard
(never through a proxy), every event is on EVENT_SYNC_HOST, and backdated or future times are
refused. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.testclient import TestClient

from harness.eventstream import event_sync_consultation, event_sync_time
from service import metrics
from service.app import create_app
from service.config import Settings
from service.store import uow
from service.store.models import AuditEvent, ProsodyEvent, ProsodyHost, VideoCall
from tests.api.conftest import Api

ROOM = "appointment_appt1"
HOST = "muc.meet.jitsi"  # EVENT_SYNC_HOST's default: docker-jitsi-meet's MUC component


def headers(api: Api, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.settings.event_sync_token}", **extra}


def stored() -> int:
    return uow.run(lambda: ProsodyEvent.select().count())


def audits(action: str) -> list[AuditEvent]:
    return uow.run(
        lambda: list(AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.id))
    )


def counted(result: str) -> float:
    value = metrics._REGISTRY.get_sample_value(
        "videocalls_events_received_total", {"source": "event_sync", "result": result}
    )
    return value or 0.0


def record(api: Api) -> dict[str, Any]:
    response = api.client.get("/api/video-calls/appt1", headers=api.auth("doc"))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def hosts(api: Api) -> list[str]:
    response = api.client.get("/api/admin/prosody-hosts", headers=api.admin())
    assert response.status_code == 200, response.text
    return [h["host"] for h in response.json()["hosts"]]


@contextmanager
def client_at(api: Api, address: str, settings: Settings | None = None) -> Iterator[TestClient]:
    """The same database, spoken to from socket address `address`."""
    app = create_app(settings or api.settings)
    with TestClient(app, raise_server_exceptions=False, client=(address, 40000)) as client:
        yield client


def room_created(at_s: int, jid: str = f"{ROOM}@{HOST}") -> dict[str, Any]:
    return {
        "event_name": "muc-room-created",
        "room_name": ROOM,
        "room_jid": jid,
        "is_breakout": False,
        "created_at": at_s,
    }


URL = "/api/event-sync/events/room/created"


# --- the peer -------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["203.0.113.7", "2001:db8::7", "100.64.0.1", "testclient"])
def test_a_peer_outside_the_allowed_networks_is_refused_and_nothing_is_stored(
    call: Api, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    before_audits = uow.run(lambda: AuditEvent.select().count())
    before = counted("rejected")
    with client_at(call, address) as outsider, caplog.at_level(logging.WARNING):
        for kind, payload in event_sync_consultation(ROOM, "doc", "pat", call.clock.s):
            response = outsider.post(
                f"/api/event-sync/events/{kind}", json=payload, headers=headers(call)
            )
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "network_not_allowed"
            assert "EVENT_SYNC_ALLOWED_NETWORKS" in response.json()["message"]
    assert stored() == 0
    assert uow.run(lambda: AuditEvent.select().count()) == before_audits
    assert uow.run(lambda: ProsodyHost.select().count()) == 0
    assert counted("rejected") == before + 6
    rejected = [r for r in caplog.records if r.getMessage() == "event rejected"]
    assert len(rejected) == 6
    fields = rejected[0].fields  # type: ignore[attr-defined]
    assert fields["reason"] in ("network_not_allowed", "not_an_ip_address")
    # The log never carries the token (nor any other header).
    assert call.settings.event_sync_token not in caplog.text
    # Nothing of the outsider's reached the call: no event, no session, no source.
    presence = record(call)["presence"]
    assert presence["source"] is None and presence["sessions"] == []


def test_outsiders_cannot_even_try_the_token(call: Api) -> None:
    """The network is checked first: without a token, with a wrong one, the answer is 403."""
    with client_at(call, "198.51.100.1") as outsider:
        for auth in ({}, {"Authorization": "Bearer nope"}):
            response = outsider.post(URL, json=room_created(call.clock.s), headers=auth)
            assert (response.status_code, response.json()["error"]) == (403, "network_not_allowed")


@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-For": "10.0.0.5"},
        {"Forwarded": "for=10.0.0.5"},
        {"X-Real-IP": "10.0.0.5"},
    ],
)
def test_a_request_through_a_proxy_is_refused_even_from_loopback(
    call: Api, header: dict[str, str]
) -> None:
    """A reverse proxy on the same host connects from loopback (or Docker's bridge gateway):
    what it forwards came from outside, so any forwarding header is a refusal."""
    response = call.client.post(
        URL, json=room_created(call.clock.s), headers=headers(call, **header)
    )
    assert (response.status_code, response.json()["error"]) == (403, "network_not_allowed")
    assert stored() == 0


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.1.2.3", "172.18.0.4", "192.168.1.9"])
def test_prosodys_networks_are_heard(call: Api, address: str) -> None:
    with client_at(call, address) as prosody:
        response = prosody.post(URL, json=room_created(call.clock.s), headers=headers(call))
    assert response.status_code == 200, response.text
    assert stored() == 1


def test_an_ipv4_peer_on_a_dual_stack_socket_is_matched_as_ipv4(call: Api) -> None:
    with client_at(call, "::ffff:172.18.0.4") as prosody:
        response = prosody.post(URL, json=room_created(call.clock.s), headers=headers(call))
    assert response.status_code == 200, response.text


def test_allowed_networks_are_configurable(call: Api) -> None:
    only = dataclasses.replace(
        call.settings,
        event_sync_allowed_networks=(ipaddress.ip_network("172.18.0.0/16"),),
    )
    with client_at(call, "127.0.0.1", only) as loopback:
        response = loopback.post(URL, json=room_created(call.clock.s), headers=headers(call))
        assert response.status_code == 403
    with client_at(call, "172.18.0.9", only) as prosody:
        response = prosody.post(URL, json=room_created(call.clock.s), headers=headers(call))
        assert response.status_code == 200
    assert stored() == 1


# --- the time -------------------------------------------------------------------------------


def test_a_backdated_event_is_refused_and_audited(
    call: Api, caplog: pytest.LogCaptureFixture
) -> None:
    at_s = call.clock.s - 121  # EVENT_SYNC_MAX_AGE is 120 s
    before = counted("stale")
    with caplog.at_level(logging.WARNING):
        response = call.client.post(URL, json=room_created(at_s), headers=headers(call))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "stale_event"
    assert "120 seconds before" in response.json()["message"]
    assert stored() == 0
    assert uow.run(lambda: ProsodyHost.select().count()) == 0
    assert audits("event.received") == []
    [row] = audits("event.refused")
    call_id = uow.run(lambda: VideoCall.get(VideoCall.appointment_id == "appt1").id)
    assert row.call_id == call_id  # on the trail of the consultation it aimed at
    assert row.actor == "prosody"
    detail = json.loads(row.detail)
    assert detail["reason"] == "stale" and detail["max_age_s"] == 120
    assert detail["source"] == "event_sync" and detail["type"] == "room.created"
    assert detail["occurred_at"] == at_s * 1000 and detail["room"] == ROOM
    assert counted("stale") == before + 1
    assert any(getattr(r, "fields", {}).get("reason") == "stale" for r in caplog.records)


def test_a_future_event_is_refused_with_the_same_bound(call: Api) -> None:
    response = call.client.post(URL, json=room_created(call.clock.s + 122), headers=headers(call))
    assert (response.status_code, response.json()["error"]) == (400, "future_event")
    assert stored() == 0
    assert json.loads(audits("event.refused")[0].detail)["reason"] == "future"


def test_events_within_the_bound_are_stored(call: Api) -> None:
    for at_s in (call.clock.s - 120, call.clock.s + 120):
        response = call.client.post(URL, json=room_created(at_s), headers=headers(call))
        assert response.status_code == 200, response.text
    assert stored() == 2
    assert audits("event.refused") == []


def test_the_bound_is_configurable(call: Api) -> None:
    longer = dataclasses.replace(call.settings, event_sync_max_age=3600)
    with client_at(call, "127.0.0.1", longer) as prosody:
        response = prosody.post(URL, json=room_created(call.clock.s - 3000), headers=headers(call))
    assert response.status_code == 200, response.text


def test_an_occupant_left_is_timed_by_its_leave_not_its_join(call: Api) -> None:
    """A long session's `left` repeats its old `joined_at`: only the leave's time counts."""
    payload = event_sync_consultation(ROOM, "doc", "pat", call.clock.s - 3000)[4][1]
    payload["occupant"]["left_at"] = call.clock.s - 5
    response = call.client.post(
        "/api/event-sync/events/occupant/left", json=payload, headers=headers(call)
    )
    assert response.status_code == 200, response.text


# --- the host -------------------------------------------------------------------------------


def test_the_host_a_body_names_is_ignored(call: Api) -> None:
    for jid in (f"{ROOM}@muc.evil", f"{ROOM}@conference.elsewhere.example"):
        response = call.client.post(
            URL, json=room_created(call.clock.s, jid), headers=headers(call)
        )
        assert response.status_code == 200, response.text
    body = room_created(call.clock.s)
    del body["room_jid"]
    assert call.client.post(URL, json=body, headers=headers(call)).status_code == 200
    assert hosts(call) == [HOST]
    assert uow.run(lambda: {e.host for e in ProsodyEvent.select()}) == {HOST}
    assert uow.run(lambda: {e.room_name for e in ProsodyEvent.select()}) == {ROOM}


def test_event_sync_host_is_configurable(call: Api) -> None:
    other = dataclasses.replace(call.settings, event_sync_host="conference.meet.example.com")
    with client_at(call, "127.0.0.1", other) as prosody:
        response = prosody.post(
            URL, json=room_created(call.clock.s, f"{ROOM}@muc.evil"), headers=headers(call)
        )
    assert response.status_code == 200, response.text
    assert hosts(call) == ["conference.meet.example.com"]


# --- the measured attack --------------------------------------------------------------------


def test_the_forged_consultation_no_longer_completes(call: Api) -> None:
    """Six requests backdated an hour, naming a made-up host `muc.evil`: measured on the old
    code, a COMPLETED call of 3,400 s tracked by the server and `muc.evil` among the hosts."""
    t0_s = call.clock.s - 3600
    answers = []
    for kind, payload in event_sync_consultation(ROOM, "doc", "pat", t0_s):
        forged = json.loads(json.dumps(payload).replace(f"@{HOST}", "@muc.evil"))
        response = call.client.post(
            f"/api/event-sync/events/{kind}", json=forged, headers=headers(call)
        )
        answers.append((response.status_code, response.json()["error"]))
    assert answers == [(400, "stale_event")] * 6
    body = record(call)
    assert body["videoCall"]["status"] == "SCHEDULED"
    assert body["videoCall"]["duration"] is None
    assert body["presence"]["sessions"] == []
    assert body["presence"]["source"] is None
    assert stored() == 0
    assert hosts(call) == []
    assert len(audits("event.refused")) == 6


def test_a_consultation_sent_as_it_happens_is_recorded_as_event_syncs(call: Api) -> None:
    """The honest stream, each request when it happens: COMPLETED, and the record says its
    events came unsigned through event_sync."""
    assert record(call)["presence"]["source"] is None
    for kind, payload in event_sync_consultation(ROOM, "doc", "pat", call.clock.s):
        call.clock.set(event_sync_time(kind, payload) * 1000 + 900)
        response = call.client.post(
            f"/api/event-sync/events/{kind}", json=payload, headers=headers(call)
        )
        assert response.status_code == 200, response.text
    body = record(call)
    assert body["videoCall"]["status"] == "COMPLETED"
    assert body["videoCall"]["duration"] == 600
    assert body["presence"]["source"] == "event_sync"
    assert hosts(call) == [HOST]
