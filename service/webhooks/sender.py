"""The sender: delivers due outbox messages to WEBHOOK_URL, signed, with retries.

Each replica (each worker process) runs one. A sender claims a batch of due messages in one
short transaction (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite's single writer elsewhere)
and moves their `next_attempt_at` past the attempt's timeout: that is the lease. Only the
first pending message of each call is due, so a call's messages are attempted in sequence
order. The outcome is written back only by the claimant of that attempt; a sender killed
mid-attempt leaves the lease to expire, and the message is sent again with the same id.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from dataclasses import dataclass

import anyio
import anyio.to_thread
import httpx

from service import metrics
from service.clock import now_ms, now_s
from service.config import WebhookSettings
from service.receiver.signing import sign
from service.store import outbox as outbox_store
from service.store import uow
from service.store.db import DatabaseUnavailable
from service.store.outbox import DELIVERED, FAILED, PENDING

log = logging.getLogger("service.webhooks")
# httpx logs every request with its URL at INFO; our own lines say what matters.
logging.getLogger("httpx").setLevel(logging.WARNING)

BATCH = 20
IDLE_POLL_S = 1.0
# Beyond the attempt's own timeout, before another sender may take the message up.
LEASE_MARGIN_MS = 5_000
JITTER = 0.10
GONE = 410
USER_AGENT = "videocalls-webhooks/1"


@dataclass(frozen=True)
class Claimed:
    id: str
    type: str
    attempt: int
    body: str


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def worker_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def max_attempts(settings: WebhookSettings) -> int:
    return len(settings.retry_delays) + 1


def claim(settings: WebhookSettings, owner: str, limit: int = BATCH) -> list[Claimed]:
    """Lease up to `limit` due messages to `owner`: the first pending one of each call."""

    with uow.write():
        at = now_ms()
        lease_until = at + int(settings.timeout * 1000) + LEASE_MARGIN_MS
        claimed = []
        for row in outbox_store.due(at, limit):
            if row.attempts >= max_attempts(settings):
                # Its last attempt was cut short (a crash): no attempt is left.
                outbox_store.finish(
                    row.id, row.attempts, row.lease_owner, FAILED, at, None, "interrupted"
                )
                continue
            attempt = row.attempts + 1
            outbox_store.lease(row.id, attempt, owner, lease_until, at)
            claimed.append(Claimed(row.id, row.type, attempt, row.body))
        return claimed


def next_delay_ms(settings: WebhookSettings, attempt: int) -> int | None:
    """The pause after failed attempt `attempt` (1-based) with ±10 % jitter; None: give up."""
    if attempt > len(settings.retry_delays):
        return None
    base = settings.retry_delays[attempt - 1]
    return int(base * 1000 * random.uniform(1 - JITTER, 1 + JITTER))


def record(settings: WebhookSettings, owner: str, message: Claimed, outcome: Outcome) -> str:
    """Write the attempt's outcome; returns the message's status afterwards."""

    with uow.write():
        at = now_ms()
        if outcome.delivered:
            status, next_at = DELIVERED, None
        elif outcome.status == GONE:
            status, next_at = FAILED, None
        else:
            delay = next_delay_ms(settings, message.attempt)
            status, next_at = (FAILED, None) if delay is None else (PENDING, at + delay)
        done = outbox_store.finish(
            message.id,
            message.attempt,
            owner,
            status,
            at,
            outcome.status,
            outcome.error,
            next_attempt_at=next_at,
        )
        return status if done else "superseded"


def headers(secrets: tuple[str, ...], message_id: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers; one `v1,` signature per secret during a rotation."""
    timestamp = now_s()
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, message_id, timestamp, body) for s in secrets),
    }


async def attempt(
    client: httpx.AsyncClient, settings: WebhookSettings, message: Claimed
) -> Outcome:
    raw = message.body.encode()
    try:
        response = await client.post(
            settings.url, content=raw, headers=headers(settings.secrets, message.id, raw)
        )
    except httpx.TimeoutException:
        return Outcome(None, "timeout")
    except httpx.HTTPError as exc:
        return Outcome(None, type(exc).__name__)
    return Outcome(response.status_code, None)


def deliver_now(settings: WebhookSettings, message_id: str, type_: str, body: str) -> Outcome:
    """One synchronous attempt outside the outbox (`videocalls webhooks test`)."""
    raw = body.encode()
    try:
        with httpx.Client(timeout=settings.timeout, follow_redirects=False) as client:
            response = client.post(
                settings.url, content=raw, headers=headers(settings.secrets, message_id, raw)
            )
    except httpx.TimeoutException:
        return Outcome(None, "timeout")
    except httpx.HTTPError as exc:
        return Outcome(None, type(exc).__name__)
    return Outcome(response.status_code, None)


async def _one(
    client: httpx.AsyncClient, settings: WebhookSettings, owner: str, message: Claimed
) -> None:
    outcome = await attempt(client, settings, message)
    status = await anyio.to_thread.run_sync(record, settings, owner, message, outcome)
    fields = {
        "message_id": message.id,
        "type": message.type,
        "attempt": message.attempt,
        "http_status": outcome.status,
        "error": outcome.error,
        "result": status,
    }
    # A pending message after an attempt is one that will be retried.
    metrics.webhook_delivered("retry" if status == PENDING else status)
    if outcome.delivered:
        log.info("webhook delivered", extra={"fields": fields})
    else:
        log.warning("webhook attempt failed", extra={"fields": fields})


async def run_forever(settings: WebhookSettings) -> None:
    """Claim and send due messages until cancelled; errors are logged and retried."""
    owner = worker_id()
    async with httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False) as client:
        while True:
            try:
                batch = await anyio.to_thread.run_sync(claim, settings, owner)
            except DatabaseUnavailable as exc:
                log.warning("webhook claim failed", extra={"fields": {"reason": str(exc)}})
                batch = []
            except Exception:
                log.exception("webhook claim failed")
                batch = []
            if batch:
                async with anyio.create_task_group() as tasks:
                    for message in batch:
                        tasks.start_soon(_safe_one, client, settings, owner, message)
            if len(batch) < BATCH:
                await anyio.sleep(IDLE_POLL_S)


async def _safe_one(
    client: httpx.AsyncClient, settings: WebhookSettings, owner: str, message: Claimed
) -> None:
    try:
        await _one(client, settings, owner, message)
    except Exception:
        # The lease expires and the message is attempted again: nothing is lost.
        log.exception(
            "webhook attempt could not be recorded", extra={"fields": {"message_id": message.id}}
        )
