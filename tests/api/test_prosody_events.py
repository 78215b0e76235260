"""Prosody's events as the server-side truth, through the receivers, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from harness.eventstream import (
    Stream,
    consultation,
    event_sync_consultation,
    event_sync_time,
    signed,
)
from service import sweeper
from service.store import uow
from service.store.models import Appointment, AuditEvent, ProsodyEvent, VideoCall
from tests.api.conftest import Api
from tests.clock import DAY_MS, FrozenClock, appointment_around

ROOM = "appointment_appt1"


def post(api: Api, event: dict[str, Any], **kw: Any) -> Any:
    body, headers = signed(api.settings.prosody_events_secrets[0], event, **kw)
    return api.client.post("/api/prosody/events", content=body, headers=headers)


def stored() -> int:
    return uow.run(lambda: ProsodyEvent.select().count())


def details(api: Api, uid: str = "doc") -> dict[str, Any]:
    response = api.client.get("/api/video-calls/appt1", headers=api.auth(uid))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_signed_stream_produces_the_documented_record(call: Api) -> None:
    t0 = call.clock.ms - 700_000
    for event in consultation(Stream(), ROOM, "doc", "pat", t0):
        assert post(call, event).status_code == 204
    body = details(call)
    record = body["videoCall"]
    assert record["status"] == "COMPLETED"
    assert body["appointment"]["status"] == "COMPLETED"
    # Times are the overlap of doctor and patient: the doctor's minute alone is not billed.
    assert record["doctorJoinedAt"] == iso(t0 + 1_000)
    assert record["patientJoinedAt"] == iso(t0 + 61_000)
    assert record["startedAt"] == iso(t0 + 61_000)
    assert record["endedAt"] == iso(t0 + 661_000)
    assert record["duration"] == 600
    presence = body["presence"]
    assert presence["trackedByServer"] is True
    assert presence["source"] == "v1"
    assert presence["doctorPresence"] == 670
    assert presence["patientPresence"] == 600
    assert [(s["role"], s["endReason"]) for s in presence["sessions"]] == [
        ("doctor", "left"),
        ("patient", "left"),
    ]
    trail = uow.run(lambda: [e.action for e in AuditEvent.select().order_by(AuditEvent.id)])
    assert trail.count("event.received") == 6
    assert "call.transition" in trail


def iso(ms: int) -> str:
    from service.wire.base import iso as to_iso

    value = to_iso(ms)
    assert value is not None
    return value


def test_replays_are_accepted_once(call: Api) -> None:
    stream = Stream()
    event = stream.joined(ROOM, "m1", "s1", "doc", call.clock.ms)
    assert post(call, event).status_code == 204
    assert post(call, event).status_code == 204
    assert stored() == 1
    received = uow.run(
        lambda: AuditEvent.select().where(AuditEvent.action == "event.received").count()
    )
    assert received == 1


def test_forged_and_stale_requests_store_nothing(call: Api) -> None:
    event = Stream().joined(ROOM, "m1", "s1", "doc", call.clock.ms)
    body, headers = signed("whsec_" + "QUJD" * 11, event)
    response = call.client.post("/api/prosody/events", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    stale = post(call, event, timestamp=call.clock.s - 301)
    assert stale.status_code == 401
    future = post(call, event, timestamp=call.clock.s + 301)
    assert future.status_code == 401
    body, headers = signed(call.settings.prosody_events_secrets[0], event)
    tampered = body.replace(b'"doc"', b'"pat"')
    assert (
        call.client.post("/api/prosody/events", content=tampered, headers=headers).status_code
        == 401
    )
    missing = call.client.post("/api/prosody/events", content=body)
    assert missing.status_code == 401
    assert stored() == 0


def test_bodies_that_can_never_be_valid_are_400(call: Api) -> None:
    secret = call.settings.prosody_events_secrets[0]
    bad = Stream().joined(ROOM, "m1", "s1", "doc", call.clock.ms)
    bad["occurred_at"] = "yesterday"
    body, headers = signed(secret, bad)
    response = call.client.post("/api/prosody/events", content=body, headers=headers)
    assert response.status_code == 400 and response.json()["error"] == "invalid_event"
    mismatched = Stream().joined(ROOM, "m1", "s1", "doc", call.clock.ms)
    body, headers = signed(secret, mismatched)
    headers["webhook-id"] = "evt_00000000-0000-0000-0000-000000000000"
    from service.receiver.signing import sign

    headers["webhook-signature"] = sign(
        secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body
    )
    assert call.client.post("/api/prosody/events", content=body, headers=headers).status_code == 400
    assert stored() == 0


def test_rotation_accepts_either_secret(env: dict[str, str], clock: FrozenClock) -> None:
    from starlette.testclient import TestClient

    from harness.env import base_env
    from service.app import create_app
    from service.config import load_settings

    old = env["PROSODY_EVENTS_SECRET"]
    new = base_env()["PROSODY_EVENTS_SECRET"]
    settings = load_settings({**env, "PROSODY_EVENTS_SECRET": f"{new} {old}"})
    with TestClient(create_app(settings)) as client:
        for secret in (old, new):
            body, headers = signed(secret, Stream().started(clock.ms))
            assert (
                client.post("/api/prosody/events", content=body, headers=headers).status_code == 204
            )


def test_receivers_are_off_without_their_secret(env: dict[str, str]) -> None:
    from starlette.testclient import TestClient

    from service.app import create_app
    from service.config import load_settings

    trimmed = {
        k: v for k, v in env.items() if k not in ("PROSODY_EVENTS_SECRET", "EVENT_SYNC_TOKEN")
    }
    with TestClient(create_app(load_settings(trimmed))) as client:
        assert client.post("/api/prosody/events", content=b"{}").status_code == 404
        assert client.post("/api/event-sync/events/room/created", content=b"{}").status_code == 404


def test_client_reports_are_advisory_once_prosody_reports(call: Api) -> None:
    t0 = call.clock.ms - 120_000
    stream = Stream()
    post(call, stream.joined(ROOM, "m1", "s-doc", "doc", t0))
    post(call, stream.joined(ROOM, "m1", "s-pat", "pat", t0 + 10_000))
    assert details(call)["videoCall"]["status"] == "IN_PROGRESS"
    # The patient's frontend sends `end` when the patient leaves; the doctor is still there.
    post(call, stream.left(ROOM, "m1", "s-pat", "pat", t0 + 60_000))
    response = call.report("pat", "appt1", "end")
    assert response.status_code == 200
    record = details(call)["videoCall"]
    assert record["status"] == "IN_PROGRESS"
    assert record["endedAt"] is None
    assert record["startedAt"] == iso(t0 + 10_000)
    # Prosody saw both together: a client's `cancel` is audited and changes nothing.
    assert call.report("doc", "appt1", "cancel").status_code == 200
    assert details(call)["videoCall"]["status"] == "IN_PROGRESS"
    reported = uow.run(
        lambda: AuditEvent.select().where(AuditEvent.action == "status.reported").count()
    )
    assert reported == 2


def test_out_of_order_delivery_gives_the_same_record(call: Api) -> None:
    t0 = call.clock.ms - 700_000
    events = consultation(Stream(), ROOM, "doc", "pat", t0)
    for event in reversed(events):
        assert post(call, event).status_code == 204
    record = details(call)["videoCall"]
    assert record["status"] == "COMPLETED"
    assert record["startedAt"] == iso(t0 + 61_000)
    assert record["endedAt"] == iso(t0 + 661_000)
    assert record["duration"] == 600


def test_event_sync_gives_the_same_record_to_the_second(call: Api) -> None:
    t0_s = call.clock.s
    headers = {"Authorization": f"Bearer {call.settings.event_sync_token}"}
    for kind, payload in event_sync_consultation(ROOM, "doc", "pat", t0_s):
        # Each request when it happens (the receiver refuses times beyond EVENT_SYNC_MAX_AGE).
        call.clock.set(event_sync_time(kind, payload) * 1000 + 400)
        for _ in range(2):  # event_sync retries: deduplicated by a derived id
            response = call.client.post(
                f"/api/event-sync/events/{kind}", json=payload, headers=headers
            )
            assert response.status_code == 200, response.text
    assert stored() == 6
    body = details(call)
    assert body["presence"]["source"] == "event_sync"
    record = body["videoCall"]
    assert record["status"] == "COMPLETED"
    assert record["startedAt"] == iso((t0_s + 61) * 1000)
    assert record["endedAt"] == iso((t0_s + 661) * 1000)
    assert record["duration"] == 600


def test_event_sync_needs_its_token(call: Api) -> None:
    url = "/api/event-sync/events/room/created"
    assert call.client.post(url, json={}).status_code == 401
    assert (
        call.client.post(url, json={}, headers={"Authorization": "Bearer nope"}).status_code == 403
    )
    headers = {"Authorization": f"Bearer {call.settings.event_sync_token}"}
    assert (
        call.client.post("/api/event-sync/events/other/thing", json={}, headers=headers).status_code
        == 404
    )
    assert call.client.post(url, json={"room_name": 3}, headers=headers).status_code == 400
    assert stored() == 0


def test_snapshot_repairs_a_lost_left(call: Api) -> None:
    t0 = call.clock.ms - 900_000
    stream = Stream()
    post(call, stream.joined(ROOM, "m1", "s-doc", "doc", t0))
    post(call, stream.joined(ROOM, "m1", "s-pat", "pat", t0 + 5_000))
    # Both `left` events are lost; the next snapshot lists no rooms at all.
    post(call, stream.snapshot(t0 + 600_000, []))
    body = details(call)
    sessions = body["presence"]["sessions"]
    assert {s["endReason"] for s in sessions} == {"snapshot_repair"}
    assert all(s["repaired"] for s in sessions)
    repairs = uow.run(
        lambda: AuditEvent.select().where(AuditEvent.action == "presence.repaired").count()
    )
    assert repairs == 2


def test_prosody_restart_closes_sessions_of_the_old_boot(call: Api) -> None:
    t0 = call.clock.ms - 900_000
    old = Stream()
    post(call, old.joined(ROOM, "m1", "s-doc", "doc", t0))
    post(call, old.joined(ROOM, "m1", "s-pat", "pat", t0 + 5_000))
    post(call, Stream().started(t0 + 300_000))
    body = details(call)
    assert {s["endReason"] for s in body["presence"]["sessions"]} == {"prosody_restart"}
    assert body["videoCall"]["status"] in ("IN_PROGRESS", "COMPLETED")


def test_sweeper_completes_after_the_grace_period(call: Api) -> None:
    t0 = call.clock.ms - 60_000
    stream = Stream()
    post(call, stream.joined(ROOM, "m1", "s-doc", "doc", t0))
    post(call, stream.joined(ROOM, "m1", "s-pat", "pat", t0 + 1_000))
    post(call, stream.left(ROOM, "m1", "s-pat", "pat", t0 + 31_000))
    post(call, stream.left(ROOM, "m1", "s-doc", "doc", t0 + 32_000))
    assert details(call)["videoCall"]["status"] == "IN_PROGRESS"
    grace = call.settings.call_end_grace * 1000
    early = sweeper.sweep(call.settings, at=t0 + 32_000 + grace - 1)
    assert early.ran
    assert details(call)["videoCall"]["status"] == "IN_PROGRESS"
    sweeper.sweep(call.settings, at=t0 + 32_000 + grace)
    body = details(call)
    assert body["videoCall"]["status"] == "COMPLETED"
    assert body["videoCall"]["duration"] == 30
    assert body["appointment"]["status"] == "COMPLETED"
    causes = uow.run(
        lambda: [
            e.detail
            for e in AuditEvent.select().where(
                (AuditEvent.action == "call.transition") & (AuditEvent.actor == "sweeper")
            )
        ]
    )
    assert any('"to":"COMPLETED"' in c for c in causes)


def test_sweeper_marks_no_show_with_who_never_came(call: Api) -> None:
    ends = uow.run(lambda: Appointment.get_by_id("appt1").ends_at)
    call.clock.set(ends - 400_000)
    stream = Stream()
    post(call, stream.joined(ROOM, "m1", "s-doc", "doc", ends - 600_000))
    post(call, stream.left(ROOM, "m1", "s-doc", "doc", ends - 500_000))
    grace = call.settings.no_show_grace * 1000
    before = sweeper.sweep(call.settings, at=ends + grace - 1)
    assert before.ran
    assert details(call)["videoCall"]["status"] == "SCHEDULED"
    sweeper.sweep(call.settings, at=ends + grace)
    body = details(call)
    assert body["videoCall"]["status"] == "NO_SHOW"
    assert body["presence"]["missing"] == "patient"
    assert body["appointment"]["status"] == "NO_SHOW"


@pytest.mark.presence_from_clients
def test_sweeper_marks_untracked_calls_no_show_by_client_reports(seeded: Api) -> None:
    seeded.put_appointment("old", **appointment_around(seeded.clock.ms - 30 * DAY_MS, "UTC"))
    seeded.initiate("doc", "appt1")  # a current appointment: must stay SCHEDULED
    # Appointment "old" is in the past: initiate works only while CONFIRMED, so do it first.
    assert seeded.initiate("pat", "old").status_code == 200
    seeded.report("pat", "old", "join")
    # Now: long after "old" ended, two hours before appt1 ends.
    result = sweeper.sweep(seeded.settings, at=seeded.clock.ms)
    assert result.no_shows == 1
    old = seeded.client.get("/api/video-calls/old", headers=seeded.auth("doc")).json()
    assert old["videoCall"]["status"] == "NO_SHOW"
    assert old["presence"]["missing"] == "doctor"
    current = uow.run(lambda: VideoCall.get(VideoCall.appointment_id == "appt1"))
    assert current.status == "SCHEDULED"


def test_sweeper_prunes_old_snapshots_only(call: Api) -> None:
    stream = Stream()
    now = call.clock.ms
    old_at = now - sweeper.SNAPSHOT_RETENTION_MS - 60_000
    listing = [{"room": stream.room(ROOM, "m1"), "occupants": []}]
    # Timestamps within the signature tolerance; `occurred_at` is Prosody's, and old.
    post(call, stream.snapshot(old_at, listing))
    post(call, stream.snapshot(now - 1_000, listing))
    post(call, stream.joined(ROOM, "m1", "s-doc", "doc", old_at))
    result = sweeper.sweep(call.settings, at=now)
    assert result.pruned == 1
    from service.store.models import SnapshotRoom

    kinds = uow.run(lambda: sorted(e.type for e in ProsodyEvent.select()))
    assert kinds == ["occupant.joined", "rooms.snapshot"]
    assert uow.run(lambda: SnapshotRoom.select().count()) == 1
