"""service.webhooks.outbox: the messages the use cases write, and the operators' reads and
writes (list, retry); with service.store.outbox's reads and writes of the same rows (a call's
messages, delivery health, prune)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service import calls, sweeper, tracking
from service.config import Settings
from service.domain.model import Action
from service.errors import Conflict
from service.store import outbox as outbox_store
from service.store.models import WebhookCallState, WebhookMessage
from service.webhooks import outbox
from service.wire.base import iso
from tests.clock import FrozenClock
from tests.usecases.support import ROOM, Prosody, read, write

pytestmark = pytest.mark.usefixtures("seeded")


def messages(call_id: str) -> list[tuple[str, int, dict[str, Any]]]:
    """(type, sequence, body) of the call's messages, in order."""
    rows = read(lambda: outbox_store.messages_of_call(call_id))
    return [(m.type, m.sequence, json.loads(m.body)) for m in rows]


def a_full_call(settings: Settings, clock: FrozenClock) -> str:
    call_id = calls.initiate(settings, "doc", "appt1").call.id
    clock.advance(1_000)
    calls.report_status("doc", "appt1", Action.JOIN)
    clock.advance(1_000)
    calls.report_status("pat", "appt1", Action.JOIN)
    clock.advance(60_000)
    calls.report_status("pat", "appt1", Action.END)
    return call_id


@pytest.mark.presence_from_clients
@pytest.mark.usefixtures("webhooks")
def test_a_call_tells_its_story_in_sequence(settings: Settings, clock: FrozenClock) -> None:
    t0 = clock.ms
    call_id = a_full_call(settings, clock)
    told = messages(call_id)
    assert [(t, n) for t, n, _ in told] == [
        ("call.scheduled", 1),
        ("call.waiting", 2),
        ("call.started", 3),
        ("call.completed", 4),
    ]
    scheduled = told[0][2]
    assert scheduled["type"] == "call.scheduled"
    assert scheduled["timestamp"] == iso(t0)
    assert scheduled["data"]["appointmentId"] == "appt1"
    assert scheduled["data"]["sequence"] == 1
    assert scheduled["data"]["videoCall"]["status"] == "SCHEDULED"
    assert told[1][2]["data"]["waiting"] == {"role": "doctor", "since": iso(t0 + 1_000)}
    completed = told[3][2]["data"]["videoCall"]
    assert (completed["status"], completed["duration"]) == ("COMPLETED", 60)
    rows = read(lambda: list(WebhookMessage.select().order_by(WebhookMessage.sequence)))
    assert {(m.status, m.attempts, m.call_id, m.appointment_id) for m in rows} == {
        ("pending", 0, call_id, "appt1")
    }
    assert [m.next_attempt_at for m in rows] == [t0, t0 + 1_000, t0 + 2_000, t0 + 62_000]
    state = read(lambda: WebhookCallState.get_by_id(call_id))
    assert state.sequence == 4


@pytest.mark.usefixtures("webhooks")
def test_observe_owes_nothing_twice(settings: Settings, clock: FrozenClock) -> None:
    call_id = calls.initiate(settings, "doc", "appt1").call.id
    assert write(lambda: outbox.observe(call_id, clock.ms)) == 0
    calls.refresh_token(settings, "pat", "appt1")
    assert len(messages(call_id)) == 1


@pytest.mark.presence_from_clients
@pytest.mark.usefixtures("webhooks")
def test_a_refused_report_writes_no_message(settings: Settings) -> None:
    call_id = calls.initiate(settings, "doc", "appt1").call.id
    with pytest.raises(Conflict, match="Cannot change"):
        calls.report_status("doc", "appt1", Action.END)
    assert [t for t, _, _ in messages(call_id)] == ["call.scheduled"]


def test_nothing_is_written_while_webhooks_are_off(settings: Settings, clock: FrozenClock) -> None:
    call_id = a_full_call(settings, clock)
    assert messages(call_id) == []
    assert write(lambda: outbox.observe(call_id, clock.ms)) == 0
    assert read(lambda: WebhookCallState.select().count()) == 0


def set_status(message_id: str, **fields: Any) -> None:
    write(lambda: WebhookMessage.update(**fields).where(WebhookMessage.id == message_id).execute())


def stored(message_id: str) -> WebhookMessage:
    return read(lambda: WebhookMessage.get_by_id(message_id))


@pytest.mark.presence_from_clients
@pytest.mark.usefixtures("webhooks")
def test_list_messages_pages_newest_first_and_filters(
    settings: Settings, clock: FrozenClock
) -> None:
    call_id = a_full_call(settings, clock)
    ids = [m.id for m in read(lambda: outbox_store.messages_of_call(call_id))]
    first = outbox.list_messages(None, None, 3)
    assert [m.id for m in first.items] == ids[::-1][:3]
    assert first.next_cursor is not None
    rest = outbox.list_messages(None, first.next_cursor, 3)
    assert [m.id for m in rest.items] == [ids[0]]
    assert rest.next_cursor is None
    set_status(ids[1], status=outbox.FAILED)
    failed = outbox.list_messages(outbox.FAILED, None, 10)
    assert [m.id for m in failed.items] == [ids[1]]
    assert outbox.list_messages(outbox.DELIVERED, None, 10).items == []


@pytest.mark.presence_from_clients
@pytest.mark.usefixtures("webhooks")
def test_delivery_health_counts_failed_and_retrying(settings: Settings, clock: FrozenClock) -> None:
    call_id = a_full_call(settings, clock)
    ids = [m.id for m in read(lambda: outbox_store.messages_of_call(call_id))]
    assert read(lambda: outbox_store.delivery_health(10)) == (0, 0, [])
    set_status(ids[0], status=outbox.FAILED, attempts=8, updated_at=clock.ms + 2)
    set_status(ids[1], attempts=1, updated_at=clock.ms + 1)
    set_status(ids[2], status=outbox.DELIVERED, attempts=1)
    failed, retrying, newest = read(lambda: outbox_store.delivery_health(1))
    assert (failed, retrying) == (1, 1)
    assert [m.id for m in newest] == [ids[0]]
    assert [m.id for m in read(lambda: outbox_store.delivery_health(5))[2]] == [ids[0], ids[1]]


@pytest.mark.presence_from_clients
@pytest.mark.usefixtures("webhooks")
def test_retry_queues_failed_and_idle_messages_only(settings: Settings, clock: FrozenClock) -> None:
    call_id = a_full_call(settings, clock)
    ids = [m.id for m in read(lambda: outbox_store.messages_of_call(call_id))]
    set_status(ids[0], status=outbox.FAILED, attempts=8, last_status=500)
    set_status(ids[1], status=outbox.DELIVERED, attempts=1)
    set_status(ids[2], lease_owner="replica-2", next_attempt_at=clock.ms + 30_000, attempts=1)
    now = clock.advance(5_000)
    retried = outbox.retry(ids[0])
    assert retried is not None
    assert (retried.status, retried.attempts, retried.next_attempt_at) == ("pending", 0, now)
    delivered = outbox.retry(ids[1])
    assert delivered is not None and delivered.status == "delivered"
    in_flight = outbox.retry(ids[2])
    assert in_flight is not None
    assert (in_flight.lease_owner, in_flight.attempts) == ("replica-2", 1)
    assert outbox.retry("msg_missing") is None


@pytest.mark.presence_from_clients
@pytest.mark.usefixtures("webhooks")
def test_retry_failed_and_prune(settings: Settings, clock: FrozenClock) -> None:
    call_id = a_full_call(settings, clock)
    ids = [m.id for m in read(lambda: outbox_store.messages_of_call(call_id))]
    set_status(ids[0], status=outbox.FAILED)
    set_status(ids[1], status=outbox.FAILED)
    assert outbox.retry_failed() == 2
    assert outbox.retry_failed() == 0
    assert {stored(i).status for i in ids} == {"pending"}
    set_status(ids[0], status=outbox.DELIVERED)
    set_status(ids[1], status=outbox.DELIVERED)
    created = stored(ids[1]).created_at
    assert write(lambda: outbox_store.prune(created)) == 1
    assert write(lambda: outbox_store.prune(created + 1)) == 1
    assert write(lambda: outbox_store.prune(clock.ms + 1)) == 0
    assert [m.id for m in read(lambda: outbox_store.messages_of_call(call_id))] == ids[2:]


def test_message_bodies_and_ids(clock: FrozenClock) -> None:
    assert outbox.new_message_id().startswith("msg_")
    assert outbox.new_message_id() != outbox.new_message_id()
    assert json.loads(outbox.body("webhook.test", clock.ms, {"x": 1})) == {
        "type": "webhook.test",
        "timestamp": iso(clock.ms),
        "data": {"x": 1},
    }


@pytest.mark.presence_from_clients
@pytest.mark.usefixtures("webhooks")
def test_the_sweeper_prunes_old_delivered_messages(settings: Settings, clock: FrozenClock) -> None:
    call_id = a_full_call(settings, clock)
    ids = [m.id for m in read(lambda: outbox_store.messages_of_call(call_id))]
    set_status(ids[0], status=outbox.DELIVERED)
    set_status(ids[1], status=outbox.FAILED)
    set_status(ids[3], status=outbox.DELIVERED)
    cutoff = stored(ids[1]).created_at
    assert sweeper.sweep(settings, cutoff + outbox.RETENTION_MS).pruned == 1
    assert [m.id for m in read(lambda: outbox_store.messages_of_call(call_id))] == ids[1:]


@pytest.mark.usefixtures("webhooks")
def test_server_events_tell_joins_and_leaves(settings: Settings, clock: FrozenClock) -> None:
    call_id = calls.initiate(settings, "doc", "appt1").call.id
    prosody = Prosody()
    joined_at = clock.ms - 2_000
    tracking.ingest(settings, prosody.joined(ROOM, "s-doc", "doc", joined_at), "contract")
    tracking.ingest(settings, prosody.left(ROOM, "s-doc", "doc", joined_at + 1_000), "contract")
    told = messages(call_id)
    assert [(t, n) for t, n, _ in told] == [
        ("call.scheduled", 1),
        ("participant.joined", 2),
        ("call.waiting", 3),
        ("participant.left", 4),
    ]
    assert told[1][2]["data"]["participant"] == {"role": "doctor", "at": iso(joined_at)}
    assert told[3][2]["data"]["participant"] == {
        "role": "doctor",
        "at": iso(joined_at + 1_000),
        "reason": "left",
    }
