"""The webhook tables: the outbox's messages (webhook_messages) and what each call has told
the clinic so far (webhook_call_state); the sender's claims, leases and outcomes; the
operators' lists, retries and the sweeper's pruning.

What a change owes the clinic, the retry schedule and HTTP are service/webhooks'. Callers
hold the connection and the transaction (store/uow.py).
"""

from __future__ import annotations

import peewee

from service.store.call_lists import Cursor
from service.store.db import current, is_postgres
from service.store.models import WebhookCallState, WebhookMessage

# A message's status (webhook_messages.status).
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)


# --- what each call has told --------------------------------------------------------------


def told_state(call_id: str) -> WebhookCallState | None:
    """The call's last sequence number and what it has told (None: nothing yet)."""
    state: WebhookCallState | None = WebhookCallState.get_or_none(
        WebhookCallState.call_id == call_id
    )
    return state


def save_told_state(call_id: str, sequence: int, state: str) -> None:
    (
        WebhookCallState.insert(call_id=call_id, sequence=sequence, state=state)
        .on_conflict(
            conflict_target=[WebhookCallState.call_id],
            update={WebhookCallState.sequence: sequence, WebhookCallState.state: state},
        )
        .execute()
    )


def insert_message(
    message_id: str,
    type_: str,
    call_id: str,
    appointment_id: str,
    sequence: int,
    body: str,
    at: int,
) -> None:
    """A new pending message, due at once."""
    WebhookMessage.insert(
        id=message_id,
        type=type_,
        call_id=call_id,
        appointment_id=appointment_id,
        sequence=sequence,
        body=body,
        status=PENDING,
        next_attempt_at=at,
        created_at=at,
        updated_at=at,
    ).execute()


# --- the sender ---------------------------------------------------------------------------


def due(at: int, limit: int) -> list[WebhookMessage]:
    """Up to `limit` pending messages due at `at`, each the first pending one of its call,
    the longest due first. On PostgreSQL they stay locked until commit, and rows another
    sender has locked are skipped (FOR UPDATE SKIP LOCKED)."""
    earlier = WebhookMessage.alias("earlier")
    blocked = earlier.select(earlier.id).where(
        (earlier.call_id == WebhookMessage.call_id)
        & (earlier.status == PENDING)
        & (earlier.sequence < WebhookMessage.sequence)
    )
    query = (
        WebhookMessage.select()
        .where(
            (WebhookMessage.status == PENDING)
            & (WebhookMessage.next_attempt_at <= at)
            & ~peewee.fn.EXISTS(blocked)
        )
        .order_by(WebhookMessage.next_attempt_at, WebhookMessage.created_at)
        .limit(limit)
    )
    if is_postgres(current()):
        query = query.for_update(skip_locked=True)
    return list(query)


def lease(message_id: str, attempt: int, owner: str, until: int, at: int) -> None:
    """Take the message for attempt `attempt`: no other sender takes it before `until`."""
    WebhookMessage.update(
        attempts=attempt, next_attempt_at=until, lease_owner=owner, updated_at=at
    ).where(WebhookMessage.id == message_id).execute()


def finish(
    message_id: str,
    attempt: int,
    owner: str | None,
    status: str,
    at: int,
    http_status: int | None,
    error: str | None,
    next_attempt_at: int | None = None,
) -> bool:
    """Write an attempt's outcome, only if the message is still pending under this attempt
    and this owner's lease; False if another sender took it up since."""
    values: dict[str, object] = {
        "status": status,
        "last_status": http_status,
        "last_error": error[:200] if error else None,
        "lease_owner": None,
        "updated_at": at,
    }
    if status == DELIVERED:
        values["delivered_at"] = at
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    updated: int = (
        WebhookMessage.update(**values)
        .where(
            (WebhookMessage.id == message_id)
            & (WebhookMessage.status == PENDING)
            & (WebhookMessage.attempts == attempt)
            & (WebhookMessage.lease_owner == owner)
        )
        .execute()
    )
    return updated == 1


# --- operators ----------------------------------------------------------------------------


def message_page(status: str | None, cursor: Cursor | None, limit: int) -> list[WebhookMessage]:
    """Up to `limit` messages newest first, after `cursor` (one more than `limit` if more
    follow)."""
    query = WebhookMessage.select()
    if status is not None:
        query = query.where(WebhookMessage.status == status)
    if cursor is not None:
        query = query.where(
            peewee.Tuple(WebhookMessage.created_at, WebhookMessage.id)
            < (cursor.created_at, cursor.id)
        )
    return list(
        query.order_by(WebhookMessage.created_at.desc(), WebhookMessage.id.desc()).limit(limit + 1)
    )


def messages_of_call(call_id: str) -> list[WebhookMessage]:
    """A call's messages in the order they were created."""
    query = WebhookMessage.select().where(WebhookMessage.call_id == call_id)
    return list(query.order_by(WebhookMessage.sequence, WebhookMessage.created_at))


def delivery_health(limit: int) -> tuple[int, int, list[WebhookMessage]]:
    """(failed, pending after a failed attempt, the newest `limit` of both), for the console's
    health view."""
    failed = WebhookMessage.status == FAILED
    retrying = (WebhookMessage.status == PENDING) & (WebhookMessage.attempts > 0)
    newest = (
        WebhookMessage.select()
        .where(failed | retrying)
        .order_by(WebhookMessage.updated_at.desc(), WebhookMessage.id.desc())
        .limit(limit)
    )
    return (
        WebhookMessage.select().where(failed).count(),
        WebhookMessage.select().where(retrying).count(),
        list(newest),
    )


def requeue(message_id: str, at: int) -> WebhookMessage | None:
    """Make a failed (or waiting) message due at `at` with its attempts reset, and return it;
    None if there is no such message. A delivered message, or a pending one in flight (it
    keeps its lease: no second sender), is returned as it is."""
    (
        WebhookMessage.update(
            status=PENDING,
            attempts=0,
            next_attempt_at=at,
            lease_owner=None,
            updated_at=at,
        )
        .where(
            (WebhookMessage.id == message_id)
            & (
                (WebhookMessage.status == FAILED)
                | (
                    (WebhookMessage.status == PENDING)
                    & (
                        WebhookMessage.lease_owner.is_null()
                        | (WebhookMessage.next_attempt_at <= at)
                    )
                )
            )
        )
        .execute()
    )
    found: WebhookMessage | None = WebhookMessage.get_or_none(WebhookMessage.id == message_id)
    return found


def requeue_failed(at: int) -> int:
    """Every failed message due again at `at`, attempts reset; returns how many."""
    changed: int = (
        WebhookMessage.update(
            status=PENDING, attempts=0, next_attempt_at=at, lease_owner=None, updated_at=at
        )
        .where(WebhookMessage.status == FAILED)
        .execute()
    )
    return changed


def prune(before_ms: int) -> int:
    """Delete delivered messages created before `before_ms`; returns how many."""
    deleted: int = (
        WebhookMessage.delete()
        .where((WebhookMessage.status == DELIVERED) & (WebhookMessage.created_at < before_ms))
        .execute()
    )
    return deleted
