"""The sender: delivers due outbox messages to WEBHOOK_URL, signed, with retries.

Each replica (each worker process) runs one. A sender claims due messages in one short
transaction (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite's single writer elsewhere) and moves
their `next_attempt_at` past the attempt's deadline: that is the lease. Only the first pending
message of each call is due, so a call's messages are attempted in sequence order. The outcome
is written back only by the claimant of that attempt; a sender killed mid-attempt leaves the
lease to expire, and the message is sent again with the same id.

WEBHOOK_TIMEOUT is each attempt's whole deadline, counted from before its claim: connecting,
sending, the answer's headers and the little of its body that is read (ANSWER_BYTES) all fit in
it, however slowly a receiver drips. The lease runs LEASE_MARGIN_MS past that deadline, so an
attempt is over before any other sender may take its message up: a message is never in flight
twice. Attempts run side by side and the sender claims again while they run, so a slow receiver
delays no other call's message.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
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
# Beyond the attempt's own deadline, before another sender may take the message up: covers
# the clocks of two replicas disagreeing a little, and the thread hop before the claim.
LEASE_MARGIN_MS = 5_000
# Of the receiver's answer only the status matters; a few KiB are read (so a short answer
# completes and its connection can be reused), never a receiver's 30 MiB error page.
ANSWER_BYTES = 4096
JITTER = 0.10
GONE = 410
USER_AGENT = "videocalls-webhooks/1"


@dataclass(frozen=True)
class Claimed:
    id: str
    type: str
    attempt: int
    body: str
    # When the attempt must be over (anyio's clock, seconds): WEBHOOK_TIMEOUT after the moment
    # before the claim, so always before the lease ends. None: WEBHOOK_TIMEOUT from its start.
    deadline: float | None = None


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


def claim(
    settings: WebhookSettings, owner: str, limit: int = BATCH, deadline: float | None = None
) -> list[Claimed]:
    """Lease up to `limit` due messages to `owner`: the first pending one of each call.

    `deadline`, read before this was called, ends each attempt; the lease is counted from
    later (inside the transaction), so it outlives the attempt by at least LEASE_MARGIN_MS."""

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
            claimed.append(Claimed(row.id, row.type, attempt, row.body, deadline))
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
    """One POST, over by `message.deadline` (or WEBHOOK_TIMEOUT from now) whatever happens."""
    raw = message.body.encode()
    deadline = message.deadline
    if deadline is None:
        deadline = anyio.current_time() + settings.timeout
    with anyio.move_on_after(deadline - anyio.current_time()):
        try:
            async with client.stream(
                "POST",
                settings.url,
                content=raw,
                headers=headers(settings.secrets, message.id, raw),
            ) as response:
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read >= ANSWER_BYTES:
                        break
                return Outcome(response.status_code, None)
        except httpx.TimeoutException:
            return Outcome(None, "timeout")
        except httpx.HTTPError as exc:
            return Outcome(None, type(exc).__name__)
    return Outcome(None, "timeout")


def deliver_now(settings: WebhookSettings, message_id: str, type_: str, body: str) -> Outcome:
    """One attempt outside the outbox (`videocalls webhooks test`), with the same deadline."""

    async def once() -> Outcome:
        async with _client(settings) as client:
            return await attempt(client, settings, Claimed(message_id, type_, 1, body))

    # anyio.run needs a thread with no event loop running; a caller may be on one (a command
    # run from an async context, a test session's browser driver), so the attempt gets its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, once).result()


def _client(settings: WebhookSettings) -> httpx.AsyncClient:
    # httpx's timeout is per read: the attempt's deadline (attempt) is what bounds the whole.
    return httpx.AsyncClient(timeout=settings.timeout, follow_redirects=False)


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
    """Claim and send due messages until cancelled; errors are logged and retried.

    Up to BATCH attempts are in flight at once; the sender claims again every IDLE_POLL_S
    while they run, so a message due behind a slow receiver's waits no longer than a poll."""
    owner = worker_id()
    in_flight = 0

    async def one(message: Claimed) -> None:
        nonlocal in_flight
        try:
            await _safe_one(client, settings, owner, message)
        finally:
            in_flight -= 1

    async with _client(settings) as client, anyio.create_task_group() as tasks:
        while True:
            room = BATCH - in_flight
            batch: list[Claimed] = []
            if room > 0:
                # The deadline is taken before the claim, the lease inside it: the lease ends
                # at least LEASE_MARGIN_MS after the attempt has been cut off.
                deadline = anyio.current_time() + settings.timeout
                try:
                    batch = await anyio.to_thread.run_sync(claim, settings, owner, room, deadline)
                except DatabaseUnavailable as exc:
                    log.warning("webhook claim failed", extra={"fields": {"reason": str(exc)}})
                except Exception:
                    log.exception("webhook claim failed")
            for message in batch:
                in_flight += 1
                tasks.start_soon(one, message)
            if len(batch) < room or room <= 0:
                await anyio.sleep(IDLE_POLL_S)
            else:
                await anyio.sleep(0)


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
