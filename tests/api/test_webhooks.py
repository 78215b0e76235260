"""The webhook outbox in-process, on SQLite and PostgreSQL: written in the change's
transaction, claimed in sequence order under a lease, retried, stopped by 410, pruned, and
shown to operators as the OpenAPI document says."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.testclient import TestClient

from harness.env import base_env
from service import sweeper
from service.app import create_app
from service.config import Settings, WebhookSettings, load_settings
from service.store import uow
from service.store.models import VideoCall, WebhookMessage
from service.webhooks import outbox, sender
from service.webhooks.sender import Outcome
from tests.api.conftest import Api
from tests.api.test_openapi import conforms
from tests.clock import FrozenClock
from tests.e2e.conftest import free_port

LIST = "/api/admin/webhooks/messages"
RETRY = "/api/admin/webhooks/messages/{id}/retry"
HOOKS = WebhookSettings(
    url="http://127.0.0.1:9/unused",
    secrets=("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),),
    retry_delays=(10.0, 100.0),
    timeout=2.0,
)


@pytest.fixture
def hooked(request: pytest.FixtureRequest, database_url: str, clock: FrozenClock) -> Iterator[Api]:
    """The app with webhooks on, aimed at a port nobody listens on: messages stay pending."""
    clients = request.node.get_closest_marker("presence_from_clients") is not None
    env = base_env(
        DATABASE_URL=database_url,
        PRESENCE_SOURCE="clients" if clients else "server",
        WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/hooks",
        WEBHOOK_SECRET=HOOKS.secrets[0],
        SWEEP_INTERVAL="0",
    )
    settings = load_settings(env)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = Api(client, settings, clock)
        for uid in ("doc", "pat"):
            api.put_user(uid)
        api.put_appointment("appt1")
        yield api
    outbox.configure(False)


@pytest.fixture
def enabled(database_url: str) -> Iterator[None]:
    outbox.configure(True)
    yield
    outbox.configure(False)


def stored(call_id: str | None = None) -> list[WebhookMessage]:
    def work() -> list[WebhookMessage]:
        query = WebhookMessage.select().order_by(WebhookMessage.created_at, WebhookMessage.sequence)
        if call_id is not None:
            query = query.where(WebhookMessage.call_id == call_id)
        return list(query)

    return uow.run(work)


@pytest.mark.presence_from_clients
def test_changes_write_their_messages_in_their_transaction(hooked: Api) -> None:
    r = hooked.initiate("doc", "appt1")
    assert r.status_code == 200
    call_id = r.json()["videoCall"]["id"]
    assert [m.type for m in stored(call_id)] == ["call.scheduled"]
    assert hooked.report("doc", "appt1", "join").status_code == 200
    assert hooked.report("pat", "appt1", "join").status_code == 200
    assert hooked.report("doc", "appt1", "end").status_code == 200
    # A refused report rolls back, and writes no message.
    assert hooked.report("doc", "appt1", "start").status_code == 409
    messages = stored(call_id)
    assert [m.type for m in messages] == [
        "call.scheduled",
        "call.waiting",
        "call.started",
        "call.completed",
    ]
    assert [m.sequence for m in messages] == [1, 2, 3, 4]
    details = hooked.client.get("/api/video-calls/appt1", headers=hooked.auth("doc")).json()
    last = json.loads(messages[-1].body)
    assert last["type"] == "call.completed"
    assert last["data"]["videoCall"] == details["videoCall"]
    # The details answer alone says which receiver the events came through (`source`).
    assert {**last["data"]["presence"], "source": details["presence"]["source"]} == details[
        "presence"
    ]
    assert last["data"]["appointmentId"] == "appt1" and last["data"]["sequence"] == 4
    assert json.loads(messages[1].body)["data"]["waiting"] == {
        "role": "doctor",
        "since": details["videoCall"]["doctorJoinedAt"],
    }


def test_a_rolled_back_change_leaves_no_message(hooked: Api) -> None:
    call_id = hooked.initiate("doc", "appt1").json()["videoCall"]["id"]

    def change_then_fail() -> None:
        with uow.write():
            at = hooked.clock.ms
            VideoCall.update(doctor_joined_at=at).where(VideoCall.id == call_id).execute()
            assert outbox.observe(call_id, at) == 1  # call.waiting, in this transaction
            raise RuntimeError("the change fails after the message was written")

    with pytest.raises(RuntimeError):
        uow.run(change_then_fail)
    assert [m.type for m in stored(call_id)] == ["call.scheduled"]


def test_admin_endpoints_as_documented(hooked: Api) -> None:
    get, post, admin = hooked.client.get, hooked.client.post, hooked.admin()
    hooked.initiate("doc", "appt1")
    body = conforms(get(LIST, headers=admin), LIST, "get", 200)
    assert [m["type"] for m in body["messages"]] == ["call.scheduled"]
    assert body["messages"][0]["status"] == "pending"
    assert (
        conforms(get(LIST, params={"status": "failed"}, headers=admin), LIST, "get", 200)["count"]
        == 0
    )
    conforms(get(LIST, params={"status": "lost"}, headers=admin), LIST, "get", 400)
    conforms(get(LIST, params={"cursor": "!"}, headers=admin), LIST, "get", 400)
    conforms(get(LIST), LIST, "get", 401)
    conforms(get(LIST, headers={"Authorization": "Bearer nope"}), LIST, "get", 403)

    message_id = body["messages"][0]["id"]
    done = conforms(post(RETRY.format(id=message_id), headers=admin), RETRY, "post", 200)
    assert done["webhookMessage"]["id"] == message_id
    assert done["webhookMessage"]["status"] == "pending"
    conforms(post(RETRY.format(id="msg_unknown"), headers=admin), RETRY, "post", 404)
    conforms(post(RETRY.format(id="a b"), headers=admin), RETRY, "post", 400)
    uow.run(
        lambda: (
            WebhookMessage.update(status=outbox.DELIVERED)
            .where(WebhookMessage.id == message_id)
            .execute()
        )
    )
    conforms(post(RETRY.format(id=message_id), headers=admin), RETRY, "post", 409)


def test_pages_of_messages(hooked: Api) -> None:
    for n in range(3):
        hooked.put_appointment(f"p{n}")
        hooked.clock.advance(1)
        assert hooked.initiate("doc", f"p{n}").status_code == 200
    get, admin = hooked.client.get, hooked.admin()
    first = conforms(get(LIST, params={"limit": "2"}, headers=admin), LIST, "get", 200)
    assert first["count"] == 2 and first["nextCursor"]
    rest = get(LIST, params={"limit": "2", "cursor": first["nextCursor"]}, headers=admin).json()
    seen = [m["appointmentId"] for m in first["messages"] + rest["messages"]]
    assert seen == ["p2", "p1", "p0"] and rest["nextCursor"] is None


def add(call_id: str | None, sequence: int, at: int, kind: str = "call.scheduled") -> str:
    message_id = outbox.new_message_id()
    uow.run(
        lambda: WebhookMessage.insert(
            id=message_id,
            type=kind,
            call_id=call_id,
            sequence=sequence,
            body="{}",
            status=outbox.PENDING,
            next_attempt_at=at,
            created_at=at,
            updated_at=at,
        ).execute()
    )
    return message_id


def row(message_id: str) -> WebhookMessage:
    return uow.run(lambda: WebhookMessage.get_by_id(message_id))


def test_a_call_s_messages_go_in_sequence_order_under_a_lease(
    database_url: str, clock: FrozenClock
) -> None:
    first = add("vc_a", 1, clock.ms)
    second = add("vc_a", 2, clock.ms)
    other = add("vc_b", 1, clock.ms)
    claimed = sender.claim(HOOKS, "one")
    assert sorted(c.id for c in claimed) == sorted([first, other])
    # Leased: another replica finds nothing until the attempt's time is up.
    assert sender.claim(HOOKS, "two") == []
    clock.advance(int(HOOKS.timeout * 1000) + sender.LEASE_MARGIN_MS)
    again = sender.claim(HOOKS, "two")
    assert sorted(c.id for c in again) == sorted([first, other])
    assert {c.attempt for c in again} == {2}
    # The first claimant's late answer is not recorded over the second attempt.
    late = next(c for c in claimed if c.id == first)
    assert sender.record(HOOKS, "one", late, Outcome(204, None)) == "superseded"
    mine = next(c for c in again if c.id == first)
    assert sender.record(HOOKS, "two", mine, Outcome(204, None)) == "delivered"
    assert [c.id for c in sender.claim(HOOKS, "two")] == [second]
    assert row(first).status == "delivered" and row(first).last_status == 204


def test_retries_with_jitter_then_fail_and_410_stops(database_url: str, clock: FrozenClock) -> None:
    retried = add(None, 0, clock.ms)
    (claimed,) = sender.claim(HOOKS, "one")
    assert sender.record(HOOKS, "one", claimed, Outcome(503, None)) == "pending"
    delay = row(retried).next_attempt_at - clock.ms
    assert 9_000 <= delay <= 11_000  # 10 s ± 10 %
    clock.advance(11_000)
    (claimed,) = sender.claim(HOOKS, "one")
    assert sender.record(HOOKS, "one", claimed, Outcome(None, "timeout")) == "pending"
    assert 90_000 <= row(retried).next_attempt_at - clock.ms <= 110_000
    clock.advance(110_000)
    (claimed,) = sender.claim(HOOKS, "one")
    assert claimed.attempt == 3
    assert sender.record(HOOKS, "one", claimed, Outcome(500, None)) == "failed"
    assert row(retried).last_status == 500 and row(retried).attempts == 3

    gone = add(None, 0, clock.ms)
    (claimed,) = sender.claim(HOOKS, "one")
    assert sender.record(HOOKS, "one", claimed, Outcome(410, None)) == "failed"
    assert row(gone).attempts == 1
    assert outbox.retry_failed() == 2
    assert {c.id for c in sender.claim(HOOKS, "one")} == {retried, gone}


def test_an_attempt_cut_short_on_the_last_try_fails_the_message(
    database_url: str, clock: FrozenClock
) -> None:
    cut = add(None, 0, clock.ms)
    uow.run(
        lambda: (
            WebhookMessage.update(attempts=sender.max_attempts(HOOKS))
            .where(WebhookMessage.id == cut)
            .execute()
        )
    )
    assert sender.claim(HOOKS, "one") == []
    assert row(cut).status == "failed" and row(cut).last_error == "interrupted"


def test_the_sweeper_prunes_delivered_messages_after_30_days(
    settings: Settings, clock: FrozenClock
) -> None:
    old = add(None, 0, clock.ms - outbox.RETENTION_MS - 1)
    recent = add(None, 0, clock.ms - outbox.RETENTION_MS + 60_000)
    stuck = add(None, 0, clock.ms - outbox.RETENTION_MS - 1)
    uow.run(
        lambda: (
            WebhookMessage.update(status=outbox.DELIVERED)
            .where(WebhookMessage.id.in_([old, recent]))
            .execute()
        )
    )
    sweeper.sweep(settings)
    remaining = {m.id for m in stored()}
    assert remaining == {recent, stuck}


def test_nothing_is_written_while_webhooks_are_off(enabled: None, api: Api) -> None:
    # The `api` app has no WEBHOOK_URL: building it switched the outbox off again.
    for uid in ("doc", "pat"):
        api.put_user(uid)
    api.put_appointment("appt1")
    assert api.initiate("doc", "appt1").status_code == 200
    assert stored() == []


def test_an_operator_retry_leaves_a_message_in_flight_to_its_sender(
    database_url: str, clock: FrozenClock
) -> None:
    waiting = add(None, 0, clock.ms)
    (claimed,) = sender.claim(HOOKS, "one")
    retried = outbox.retry(waiting)
    assert retried is not None and retried.lease_owner == "one" and retried.attempts == 1
    assert sender.record(HOOKS, "one", claimed, Outcome(503, None)) == "pending"
    # Between attempts an operator may bring the next one forward, from attempt one.
    retried = outbox.retry(waiting)
    assert retried is not None and retried.attempts == 0 and retried.next_attempt_at == clock.ms
    assert [c.id for c in sender.claim(HOOKS, "two")] == [waiting]


def test_each_attempt_is_counted_by_its_outcome(database_url: str, clock: FrozenClock) -> None:
    import anyio
    import httpx

    from service import metrics

    def count(result: str) -> float:
        return metrics.WEBHOOK_DELIVERIES.labels(result)._value.get()  # type: ignore[no-any-return]

    before = count("retry")
    add(None, 0, clock.ms)
    (claimed,) = sender.claim(HOOKS, "one")

    async def attempt_once() -> None:
        async with httpx.AsyncClient(timeout=HOOKS.timeout) as client:
            await sender._one(client, HOOKS, "one", claimed)  # nobody listens on HOOKS.url

    # In a thread of its own: the session's browser driver may run an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, attempt_once).result()
    assert count("retry") == before + 1


def test_the_console_shows_a_call_s_messages_and_failing_deliveries(
    seeded: Api, clock: FrozenClock
) -> None:
    call_id = seeded.initiate("doc", "appt1").json()["videoCall"]["id"]
    second = add(call_id, 2, clock.ms, "call.waiting")
    first = add(call_id, 1, clock.ms)
    (claimed,) = [c for c in sender.claim(HOOKS, "one") if c.id == first]
    assert sender.record(HOOKS, "one", claimed, Outcome(410, None)) == "failed"
    clock.advance(1)
    (claimed,) = [c for c in sender.claim(HOOKS, "one") if c.id == second]
    assert sender.record(HOOKS, "one", claimed, Outcome(503, None)) == "pending"
    add(None, 0, clock.ms, "webhook.test")  # never attempted: not failing

    path = "/api/admin/console/calls/{ref}"
    response = seeded.client.get(f"/api/admin/console/calls/{call_id}", headers=seeded.admin())
    view = conforms(response, path, "get", 200)
    assert [(m["id"], m["sequence"], m["status"]) for m in view["webhooks"]] == [
        (first, 1, "failed"),
        (second, 2, "pending"),
    ]
    response = seeded.client.get("/api/admin/console/health", headers=seeded.admin())
    health = conforms(response, "/api/admin/console/health", "get", 200)["webhooks"]
    assert (health["enabled"], health["failed"], health["retrying"]) == (False, 1, 1)
    assert [m["id"] for m in health["failing"]] == [second, first]  # newest change first
    assert health["failing"][1]["lastHttpStatus"] == 410


def test_a_lobby_wait_and_a_recording_are_told_to_the_clinic(seeded: Api) -> None:
    from harness.eventstream import Stream
    from tests.api.test_prosody_events import ROOM, post

    outbox.configure(True)  # after create_app, which set it from the (webhook-less) settings
    try:
        call_id = seeded.initiate("doc", "appt1").json()["videoCall"]["id"]
        t0, room, lobby = seeded.clock.ms, Stream(), Stream()
        knock = {"session": "k-pat", "user_id": "pat"}
        recording = {"session": "rec-1", "mode": "file"}
        for event in (
            room.joined(ROOM, "m1", "s-doc", "doc", t0 - 60_000),
            lobby.event("lobby.joined", t0 - 50_000, room=lobby.room(ROOM, "l1"), occupant=knock),
            room.event(
                "recording.started", t0 - 40_000, room=room.room(ROOM, "m1"), recording=recording
            ),
            room.event(
                "recording.stopped", t0 - 20_000, room=room.room(ROOM, "m1"), recording=recording
            ),
        ):
            assert post(seeded, event).status_code == 204
    finally:
        outbox.configure(False)
    bodies = [json.loads(m.body) for m in stored(call_id)]
    kinds = [b["type"] for b in bodies]
    assert kinds.count("recording.started") == kinds.count("recording.stopped") == 1
    waiting = [b["data"]["waiting"] for b in bodies if b["type"] == "call.waiting"]
    # The doctor waited first; then the patient knocking in the lobby is the one waiting.
    assert waiting[-1]["role"] == "patient"
    stopped = next(b for b in bodies if b["type"] == "recording.stopped")["data"]["recording"]
    assert stopped["mode"] == "file" and stopped["endedAt"] is not None
