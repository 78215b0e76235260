"""Late evidence corrects the record (issue 30), through the signed receiver, on SQLite and
PostgreSQL: events that occurred before a decision and arrive after it (a spool replayed after
an outage) correct a NO_SHOW to the consultation that took place, audited, told by webhook,
and the appointment follows; a late clinic replayed after the deadline waits again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from harness.env import base_env
from harness.eventstream import Stream
from service import sweeper
from service.app import create_app
from service.config import load_settings
from service.store import uow
from service.store.models import Appointment, AuditEvent, VideoCall, WebhookMessage
from service.webhooks import outbox
from tests.api.conftest import Api
from tests.api.test_prosody_events import ROOM, details, iso, post
from tests.clock import FrozenClock, appointment_around
from tests.e2e.conftest import free_port

MINUTE = 60_000
WEBHOOK_SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


@pytest.fixture
def hooked(database_url: str, clock: FrozenClock) -> Iterator[Api]:
    """Presence from the server, webhooks on (aimed at a port nobody listens on, so the
    messages stay in the outbox to be read), the sweeper only when a test runs it."""
    env = base_env(
        DATABASE_URL=database_url,
        PRESENCE_SOURCE="server",
        WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/hooks",
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        SWEEP_INTERVAL="0",
    )
    settings = load_settings(env)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = Api(client, settings, clock)
        for uid in ("doc", "pat"):
            api.put_user(uid)
        yield api
    outbox.configure(False)


def appointment(api: Api) -> tuple[int, int]:
    """`appt1` from a minute ago for half an hour, its call initiated now: (now, its end);
    the consultation's times below count from now."""
    api.put_appointment(
        "appt1", **appointment_around(api.clock.ms, before_ms=MINUTE, after_ms=29 * MINUTE)
    )
    assert api.initiate("doc", "appt1").status_code == 200
    row = uow.run(lambda: Appointment.get_by_id("appt1"))
    return api.clock.ms, row.ends_at


def stored() -> tuple[str, str]:
    return uow.run(
        lambda: (
            VideoCall.get(VideoCall.room_name == ROOM).status,
            Appointment.get_by_id("appt1").status,
        )
    )


def audits(action: str) -> list[dict[str, Any]]:
    rows = uow.run(
        lambda: list(AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.id))
    )
    return [json.loads(row.detail) for row in rows]


def told() -> list[tuple[int, str, dict[str, Any]]]:
    rows = uow.run(lambda: list(WebhookMessage.select().order_by(WebhookMessage.sequence)))
    return [(row.sequence, row.type, json.loads(row.body)["data"]) for row in rows]


def test_a_kept_appointment_marked_no_show_is_corrected_by_the_replayed_spool(
    hooked: Api,
) -> None:
    api = hooked
    start, end = appointment(api)
    deadline = end + api.settings.no_show_grace * 1000
    # The host was heard as the appointment began (its minute's snapshot, no rooms yet).
    stream = Stream()
    assert post(api, stream.snapshot(start, [], 60)).status_code == 204
    # Then the service hears nothing (the module spools); at the deadline the sweeper settles
    # what it knows, nobody came, provisionally: the host has not been heard past it.
    api.clock.set(deadline + MINUTE)
    assert sweeper.sweep(api.settings, at=api.clock.ms).ran
    assert stored() == ("NO_SHOW", "NO_SHOW")
    assert details(api)["presence"]["missing"] == "both"
    assert details(api)["videoCall"]["settled"] == "provisional"
    # Ten minutes later the spool is replayed: the consultation took place.
    api.clock.set(deadline + 10 * MINUTE)
    replay = [
        stream.created(ROOM, "m1", start + 2 * MINUTE - 1_000),
        stream.joined(ROOM, "m1", "s-doc", "doc", start + 2 * MINUTE),
        stream.joined(ROOM, "m1", "s-pat", "pat", start + 3 * MINUTE),
        stream.left(ROOM, "m1", "s-pat", "pat", start + 22 * MINUTE),
        stream.left(ROOM, "m1", "s-doc", "doc", start + 22 * MINUTE),
        stream.destroyed(ROOM, "m1", start + 22 * MINUTE + 1_000),
    ]
    for event in replay:
        assert post(api, event).status_code == 204
    body = details(api)
    record = body["videoCall"]
    assert record["status"] == "COMPLETED"
    assert record["startedAt"] == iso(start + 3 * MINUTE)
    assert record["endedAt"] == iso(start + 22 * MINUTE)
    assert record["duration"] == 19 * 60
    assert body["presence"]["missing"] is None
    assert body["appointment"]["status"] == "COMPLETED"
    assert stored() == ("COMPLETED", "COMPLETED")
    # The replay reached past the call's end (the room's destroy): nothing before the
    # decision can still be on its way.
    assert record["settled"] == "final"
    # One correction, naming the event that made the difference: the doctor's join shows
    # someone was there at the deadline, so the no-show was not one (the start and the end
    # then follow as transitions, each the derivation of the events arrived so far).
    corrections = audits("call.corrected")
    assert [(c["from"], c["to"], c["events"]) for c in corrections] == [
        ("NO_SHOW", "SCHEDULED", [replay[1]["id"]])
    ]
    assert corrections[0]["previous"]["missing"] == "both"
    assert corrections[0]["corrected"]["missing"] is None
    # The appointment follows: back to CONFIRMED with the correction, then along the call.
    assert [(a["to"], a.get("correction")) for a in audits("appointment.transition")] == [
        ("NO_SHOW", None),
        ("CONFIRMED", True),
        ("IN_PROGRESS", None),
        ("COMPLETED", None),
    ]
    # The clinic hears the corrected record as status messages numbered after the no-show
    # it was told: the last one it reads is the truth.
    statuses = [(seq, kind) for seq, kind, _ in told() if kind.startswith("call.")]
    assert [kind for _, kind in statuses] == [
        "call.scheduled",
        "call.no_show",
        "call.scheduled",
        "call.waiting",
        "call.started",
        "call.completed",
    ]
    last_seq, last_kind, last_data = told()[-1]
    assert last_kind == "call.completed" and last_seq == max(seq for seq, _ in statuses)
    assert last_data["videoCall"]["duration"] == 19 * 60
    assert last_data["presence"]["missing"] is None
    # The console's timeline shows the correction among the status changes.
    console = api.client.get(f"/api/admin/console/calls/{record['id']}", headers=api.admin())
    assert console.status_code == 200, console.text
    assert [(t["from"], t["to"], t["cause"]) for t in console.json()["transitions"]] == [
        ("SCHEDULED", "NO_SHOW", "sweeper"),
        ("NO_SHOW", "SCHEDULED", "correction: server_event"),
        ("SCHEDULED", "IN_PROGRESS", "server_event"),
        ("IN_PROGRESS", "COMPLETED", "server_event"),
    ]


def test_a_late_clinic_replayed_after_the_deadline_waits_again(hooked: Api) -> None:
    api = hooked
    start, end = appointment(api)
    deadline = end + api.settings.no_show_grace * 1000
    api.clock.set(deadline + 10 * MINUTE)
    stream = Stream()
    created = stream.created(ROOM, "m1", start + 5 * MINUTE - 1_000)
    assert post(api, created).status_code == 204
    # Nobody in the room yet, as far as the service knows: the deadline has passed.
    assert stored()[0] == "NO_SHOW"
    # The patient joined at start + 5 min and is still waiting: the call waits again.
    assert post(api, stream.joined(ROOM, "m1", "s-pat", "pat", start + 5 * MINUTE)).status_code
    assert stored() == ("SCHEDULED", "CONFIRMED")
    body = details(api)
    assert body["presence"]["missing"] is None
    waiting = body["presence"]["waiting"]
    assert waiting["role"] == "patient"
    assert waiting["since"] == iso(start + 5 * MINUTE)
    assert [(c["from"], c["to"]) for c in audits("call.corrected")] == [("NO_SHOW", "SCHEDULED")]
    # A sweep while the patient waits changes nothing.
    api.clock.set(api.clock.ms + MINUTE)
    assert sweeper.sweep(api.settings, at=api.clock.ms).ran
    assert stored()[0] == "SCHEDULED"
    # The doctor arrives: the consultation starts.
    arrived = api.clock.ms - 1_000  # (a second ago: together for a moment already)
    assert post(api, stream.joined(ROOM, "m1", "s-doc", "doc", arrived)).status_code == 204
    assert stored() == ("IN_PROGRESS", "IN_PROGRESS")
    assert details(api)["videoCall"]["startedAt"] == iso(arrived)
    kinds = [kind for _, kind, _ in told() if kind.startswith("call.")]
    assert kinds[-3:] == ["call.scheduled", "call.waiting", "call.started"]


def test_a_late_clinic_whose_patient_left_is_a_no_show_again(hooked: Api) -> None:
    api = hooked
    start, end = appointment(api)
    deadline = end + api.settings.no_show_grace * 1000
    api.clock.set(deadline + 10 * MINUTE)
    stream = Stream()
    assert post(api, stream.created(ROOM, "m1", start + 5 * MINUTE - 1_000)).status_code == 204
    assert post(api, stream.joined(ROOM, "m1", "s-pat", "pat", start + 5 * MINUTE)).status_code
    assert stored()[0] == "SCHEDULED"
    # The patient gives up after waiting a while: the doctor never came.
    left = stream.left(ROOM, "m1", "s-pat", "pat", api.clock.ms)
    assert post(api, left).status_code == 204
    api.clock.set(api.clock.ms + api.settings.call_end_grace * 1000 + MINUTE)
    assert sweeper.sweep(api.settings, at=api.clock.ms).ran
    assert stored() == ("NO_SHOW", "NO_SHOW")
    assert details(api)["presence"]["missing"] == "doctor"


def test_past_the_horizon_a_no_show_stays(hooked: Api) -> None:
    api = hooked
    start, end = appointment(api)
    deadline = end + api.settings.no_show_grace * 1000
    api.clock.set(deadline + MINUTE)
    assert sweeper.sweep(api.settings, at=api.clock.ms).ran
    api.clock.set(deadline + api.settings.correction_horizon * 1000 + 1)
    stream = Stream()
    for event in (
        stream.joined(ROOM, "m1", "s-doc", "doc", start + 2 * MINUTE),
        stream.joined(ROOM, "m1", "s-pat", "pat", start + 3 * MINUTE),
        stream.left(ROOM, "m1", "s-pat", "pat", start + 22 * MINUTE),
    ):
        assert post(api, event).status_code == 204
    assert stored() == ("NO_SHOW", "NO_SHOW")
    assert audits("call.corrected") == []


def test_a_no_show_is_provisional_until_the_host_is_heard_past_the_deadline(
    hooked: Api,
) -> None:
    api = hooked
    start, end = appointment(api)
    deadline = end + api.settings.no_show_grace * 1000
    stream = Stream()
    assert post(api, stream.snapshot(start, [], 60)).status_code == 204
    api.clock.set(deadline + MINUTE)
    assert sweeper.sweep(api.settings, at=api.clock.ms).ran
    assert details(api)["videoCall"]["settled"] == "provisional"
    # Still unheard (silent, or partitioned away): still provisional, sweep after sweep.
    api.clock.set(deadline + 30 * MINUTE)
    assert sweeper.sweep(api.settings, at=api.clock.ms).ran
    assert details(api)["videoCall"]["settled"] == "provisional"
    # Its next snapshot, taken after the deadline, says the room stayed empty: final.
    assert post(api, stream.snapshot(deadline + 29 * MINUTE, [], 60)).status_code == 204
    assert sweeper.sweep(api.settings, at=api.clock.ms).ran
    assert details(api)["videoCall"]["settled"] == "final"
    assert stored() == ("NO_SHOW", "NO_SHOW")


def test_a_provisional_no_show_is_final_after_the_horizon(hooked: Api) -> None:
    api = hooked
    start, end = appointment(api)
    deadline = end + api.settings.no_show_grace * 1000
    assert post(api, Stream().snapshot(start, [], 60)).status_code == 204
    api.clock.set(deadline + MINUTE)
    assert sweeper.sweep(api.settings, at=api.clock.ms).ran
    assert details(api)["videoCall"]["settled"] == "provisional"
    api.clock.set(deadline + api.settings.correction_horizon * 1000 + 1)
    assert sweeper.sweep(api.settings, at=api.clock.ms).ran
    assert details(api)["videoCall"]["settled"] == "final"


def test_without_any_host_heard_a_no_show_is_final_and_an_open_call_unsettled(
    hooked: Api,
) -> None:
    api = hooked
    _, end = appointment(api)
    assert details(api)["videoCall"]["settled"] is None
    api.clock.set(end + api.settings.no_show_grace * 1000 + MINUTE)
    assert sweeper.sweep(api.settings, at=api.clock.ms).ran
    assert details(api)["videoCall"]["settled"] == "final"


def test_a_completed_call_is_measured_again_when_late_events_extend_it(hooked: Api) -> None:
    api = hooked
    start, _ = appointment(api)
    stream = Stream()
    early = [
        stream.created(ROOM, "m1", start + MINUTE),
        stream.joined(ROOM, "m1", "s-doc", "doc", start + 2 * MINUTE),
        stream.joined(ROOM, "m1", "s-pat", "pat", start + 3 * MINUTE),
        stream.left(ROOM, "m1", "s-pat", "pat", start + 10 * MINUTE),
        stream.left(ROOM, "m1", "s-doc", "doc", start + 10 * MINUTE),
    ]
    api.clock.set(start + 10 * MINUTE + 1_000)
    for event in early:
        assert post(api, event).status_code == 204
    # Nobody for the grace: the sweeper completes the call at the last departure.
    api.clock.set(start + 13 * MINUTE)
    assert sweeper.sweep(api.settings, at=api.clock.ms).ran
    assert details(api)["videoCall"]["duration"] == 7 * 60
    # Late (a partition healed): both were back within the grace and stayed ten minutes.
    api.clock.set(start + 25 * MINUTE)
    late = [
        stream.joined(ROOM, "m1", "s-doc2", "doc", start + 11 * MINUTE),
        stream.joined(ROOM, "m1", "s-pat2", "pat", start + 11 * MINUTE),
    ]
    for event in late:
        assert post(api, event).status_code == 204
    # The doctor's return, inside the grace, already means the room was never empty for it:
    # the call goes on (corrected back to IN_PROGRESS).
    assert stored()[0] == "IN_PROGRESS"
    assert details(api)["videoCall"]["endedAt"] is None
    closing = [
        stream.left(ROOM, "m1", "s-pat2", "pat", start + 21 * MINUTE),
        stream.left(ROOM, "m1", "s-doc2", "doc", start + 21 * MINUTE),
    ]
    for event in closing:
        assert post(api, event).status_code == 204
    api.clock.set(start + 25 * MINUTE)
    assert sweeper.sweep(api.settings, at=api.clock.ms).ran
    record = details(api)["videoCall"]
    assert (record["status"], record["duration"]) == ("COMPLETED", 17 * 60)
    assert record["endedAt"] == iso(start + 21 * MINUTE)
    corrections = audits("call.corrected")
    assert [(c["from"], c["to"], c["events"]) for c in corrections] == [
        ("COMPLETED", "IN_PROGRESS", [late[0]["id"]])
    ]
    assert corrections[0]["previous"]["duration"] == 7 * 60
    assert corrections[0]["corrected"]["ended_at"] is None
    # The appointment went back with its call, and on to COMPLETED again.
    assert stored() == ("COMPLETED", "COMPLETED")
    kinds = [kind for _, kind, _ in told() if kind.startswith("call.")]
    # The clinic hears the call go on (call.started again), then complete with the new end.
    assert kinds == [
        "call.scheduled",
        "call.waiting",
        "call.started",
        "call.completed",
        "call.started",
        "call.completed",
    ]


def test_the_same_status_measured_again_is_a_correction_too(hooked: Api) -> None:
    api = hooked
    start, _ = appointment(api)
    stream = Stream()
    api.clock.set(start + 30 * MINUTE)
    for event in (
        stream.created(ROOM, "m1", start + MINUTE),
        stream.joined(ROOM, "m1", "s-doc", "doc", start + 2 * MINUTE),
        stream.joined(ROOM, "m1", "s-pat", "pat", start + 5 * MINUTE),
        stream.left(ROOM, "m1", "s-pat", "pat", start + 15 * MINUTE),
        stream.left(ROOM, "m1", "s-doc", "doc", start + 15 * MINUTE),
    ):
        assert post(api, event).status_code == 204
    assert details(api)["videoCall"]["duration"] == 10 * 60
    # A second patient device, there from start + 4 min to start + 6 min, is reported late
    # (its left first, then its join): the call started earlier than measured; still
    # COMPLETED, now 11 minutes.
    early = [
        stream.left(ROOM, "m1", "s-pat-phone", "pat", start + 6 * MINUTE),
        stream.joined(ROOM, "m1", "s-pat-phone", "pat", start + 4 * MINUTE),
    ]
    for event in early:
        assert post(api, event).status_code == 204
    record = details(api)["videoCall"]
    assert (record["status"], record["duration"]) == ("COMPLETED", 11 * 60)
    assert record["startedAt"] == iso(start + 4 * MINUTE)
    corrections = audits("call.corrected")
    assert [(c["from"], c["to"], c["events"]) for c in corrections] == [
        ("COMPLETED", "COMPLETED", [early[1]["id"]])
    ]
    assert (corrections[0]["previous"]["duration"], corrections[0]["corrected"]["duration"]) == (
        600,
        660,
    )
    completed = [data for _, kind, data in told() if kind == "call.completed"]
    assert [data["videoCall"]["duration"] for data in completed] == [600, 660]
