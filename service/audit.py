"""The audit trail's proof: signed checkpoints, their publication, and verification.

A checkpoint is worth something only where the database's owner cannot quietly rewrite it:
each one is written to the log and, with WEBHOOK_URL, sent to the clinic's backend as an
`audit.checkpoint` message, besides the copy in `audit_checkpoints` that the operators' list
shows. `verify` walks the chain (service/domain/audit_chain.py) and checks every checkpoint
it is given, stored or kept outside.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import anyio
import anyio.to_thread

from service import clock
from service.config import Settings
from service.domain import audit_chain
from service.operators import Who
from service.store import audit_log, uow

log = logging.getLogger("service.audit")

CHECKPOINT_TYPE = "audit.checkpoint"


@dataclass(frozen=True)
class Verification:
    entries: int
    head_hash: str
    checkpoints: int
    failure: audit_chain.Failure | None
    # False when no key was configured to trust: signatures were checked against the key
    # each checkpoint names, which proves nothing against someone who can write the table.
    keys_pinned: bool

    @property
    def ok(self) -> bool:
        return self.failure is None


def record_read(
    settings: Settings,
    who: Who,
    action: str,
    call_id: str | None = None,
    appointment_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit entry for a read, committed before the answer leaves (a read that was
    answered is never missing from the trail). Its own short transaction after the read:
    the read itself holds no lock, and the chain's lock is held only for the append."""
    if not settings.audit_reads:
        return
    with uow.write():
        audit_log.audit(
            who.actor, action, clock.now_ms(), call_id, appointment_id, detail, who.address
        )


def take_checkpoint(settings: Settings) -> audit_chain.Checkpoint | None:
    """Sign the chain's head now, store and publish it; None without a key, or when nothing
    was appended since the last checkpoint (several replicas then add one, not several)."""
    if not settings.audit_signing_key:
        return None
    with uow.write():
        entries, head = audit_log.chain_head()
        last = audit_log.checkpoints(limit=1)
        if entries == 0 or (last and last[0].entries == entries):
            return None
        at = clock.now_ms()
        public, signature = audit_chain.sign(settings.audit_signing_key, entries, head, at)
        point = audit_log.add_checkpoint(
            audit_chain.Checkpoint(0, at, entries, head, public, signature)
        )
    publish(settings, point)
    return point


def checkpoint_json(point: audit_chain.Checkpoint) -> dict[str, object]:
    return asdict(point)


def publish(settings: Settings, point: audit_chain.Checkpoint) -> None:
    data = checkpoint_json(point)
    log.info("audit checkpoint", extra={"fields": {"checkpoint": data}})
    if not settings.webhooks.enabled:
        return
    from service.webhooks import outbox, sender

    message_id = outbox.new_message_id()
    body = outbox.body(CHECKPOINT_TYPE, point.at, data)
    outcome = sender.deliver_now(settings.webhooks, message_id, CHECKPOINT_TYPE, body)
    if not (outcome.status is not None and 200 <= outcome.status < 300):
        # The next checkpoint covers this one's entries too; the log still has it.
        log.warning(
            "audit checkpoint not delivered",
            extra={"fields": {"status": outcome.status, "error": outcome.error}},
        )


def checkpoints(limit: int) -> list[audit_chain.Checkpoint]:
    with uow.read():
        return audit_log.checkpoints(limit)


def trusted_keys(settings: Settings) -> frozenset[str]:
    keys = set(settings.audit_trusted_keys)
    if settings.audit_signing_key:
        keys.add(audit_chain.public_key(settings.audit_signing_key))
    return frozenset(keys)


def verify(settings: Settings, outside: Iterable[audit_chain.Checkpoint] = ()) -> Verification:
    """Walk the whole chain and check the stored checkpoints and `outside` ones."""
    trusted = trusted_keys(settings)

    def signature_ok(public: str, signature: str, message: bytes) -> bool:
        if trusted and public not in trusted:
            return False
        return audit_chain.signature_valid(public, signature, message)

    with uow.read():
        points = [*audit_log.checkpoints(), *outside]
        walk = audit_chain.Walk(wanted=audit_chain.entries_wanted(points))
        walk.feed(audit_log.chain())
    failure = walk.failure or audit_chain.check_checkpoints(walk, points, signature_ok)
    return Verification(walk.count, walk.head, len(points), failure, bool(trusted))


def read_checkpoints(lines: Iterable[str]) -> list[audit_chain.Checkpoint]:
    """Checkpoints kept outside, one JSON object a line: a checkpoint as published, or a log
    line or webhook body that holds one (under `checkpoint` or `data`)."""
    found = []
    for line in lines:
        if not line.strip():
            continue
        item = json.loads(line)
        for key in ("checkpoint", "data"):
            if isinstance(item.get(key), dict):
                item = item[key]
        found.append(audit_chain.Checkpoint(**{k: item[k] for k in _FIELDS}))
    return found


_FIELDS = ("id", "at", "entries", "head_hash", "public_key", "signature")


async def run_forever(settings: Settings) -> None:
    """A checkpoint every AUDIT_CHECKPOINT_INTERVAL seconds; a failure is logged, retried."""
    while True:
        await anyio.sleep(settings.audit_checkpoint_interval)
        try:
            await anyio.to_thread.run_sync(take_checkpoint, settings)
        except Exception:
            log.exception("audit checkpoint failed")
