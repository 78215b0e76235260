"""The audit log: who did what to which call or appointment, and when; one call's trail.

Rows are written in the caller's transaction, at its end (uow.defer), so an audited change and
its audit row commit together (store/uow.py). Each row is the next link of one hash chain per
database (service/domain/audit_chain.py): appends are serialised so no two take the same place. On
SQLite the writer lock of store/uow.py already does that; on PostgreSQL a transaction-level
advisory lock does, across every replica, from the append to the commit (the unique index on
`seq` turns any slip into an error instead of a fork).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from functools import partial
from typing import Any

from service.domain import audit_chain
from service.store import uow
from service.store.compiled import Compiled
from service.store.db import current, is_postgres
from service.store.models import AuditCheckpoint, AuditEvent

# Any constant works; it only has to be the same in every replica (store/migrate.py uses
# another).
CHAIN_LOCK_KEY = 7_305_032

_AUDIT = Compiled(
    lambda at, actor, action, call, appointment, detail, address, seq, nonce, content, prev, link: (
        AuditEvent.insert(
            at=at,
            actor=actor,
            action=action,
            call_id=call,
            appointment_id=appointment,
            detail=detail,
            address=address,
            seq=seq,
            nonce=nonce,
            content_hash=content,
            prev_hash=prev,
            hash=link,
        )
    ),
    -1,
    "actor",
    "action",
    "call",
    "appointment",
    "detail",
    "address",
    -2,
    "nonce",
    "content",
    "prev",
    "link",
)
_HEAD = Compiled(
    lambda floor: (
        AuditEvent.select(AuditEvent.seq, AuditEvent.hash)
        .where(AuditEvent.seq > floor)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ),
    -3,
)


# The audit action of a client's status report (service/calls.py writes it).
CLIENT_REPORT = "status.reported"


def audit(
    actor: str,
    action: str,
    now_ms: int,
    call_id: str | None = None,
    appointment_id: str | None = None,
    detail: dict[str, Any] | None = None,
    address: str | None = None,
) -> None:
    encoded = json.dumps(detail or {}, sort_keys=True, separators=(",", ":"))
    if not current().in_transaction():
        with uow.write():
            audit(actor, action, now_ms, call_id, appointment_id, detail, address)
        return
    # Appended when the transaction commits (uow.defer says why); rolled back with it. A
    # transaction that is not a `uow.write()` has no end to defer to: appended now.
    append = partial(_append, now_ms, actor, action, call_id, appointment_id, encoded, address)
    if not uow.defer(append):
        append()


def _append(
    now_ms: int,
    actor: str,
    action: str,
    call_id: str | None,
    appointment_id: str | None,
    encoded: str,
    address: str | None,
) -> None:
    database = current()
    if is_postgres(database):
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK_KEY,))
    count, prev = _head()
    seq = count + 1
    nonce = secrets.token_hex(16)
    content = audit_chain.content_hash(
        nonce, now_ms, actor, action, call_id, appointment_id, encoded, address
    )
    link = audit_chain.link_hash(prev, seq, content)
    _AUDIT.execute(
        now_ms,
        actor,
        action,
        call_id,
        appointment_id,
        encoded,
        address,
        seq,
        nonce,
        content,
        prev,
        link,
    )


def audit_trail(call_id: str) -> list[AuditEvent]:
    return list(AuditEvent.select().where(AuditEvent.call_id == call_id).order_by(AuditEvent.id))


def reports_of(call_id: str) -> list[AuditEvent]:
    """The call's client status reports (`status.reported`), oldest first."""
    return list(
        AuditEvent.select()
        .where((AuditEvent.call_id == call_id) & (AuditEvent.action == CLIENT_REPORT))
        .order_by(AuditEvent.id)
    )


def chain_head() -> tuple[int, str]:
    """The number of chained entries and the last one's hash (call inside `uow.write()` to
    hold the chain still, e.g. while taking a checkpoint)."""
    database = current()
    if is_postgres(database) and database.in_transaction():
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK_KEY,))
    return _head()


def _head() -> tuple[int, str]:
    head = _HEAD.first(AuditEvent, 0)
    if head is None or head.seq is None:
        return 0, audit_chain.GENESIS
    # A head without a hash was written around the service: verification names it; the
    # chain goes on from the genesis value rather than failing every audited request.
    return head.seq, head.hash or audit_chain.GENESIS


def chain(batch: int = 2000) -> Iterator[audit_chain.Entry]:
    """Every entry in chain order (`seq`), rows without a place last; read in batches."""
    last_seq = 0
    while True:
        rows = list(
            AuditEvent.select()
            .where(AuditEvent.seq > last_seq)
            .order_by(AuditEvent.seq)
            .limit(batch)
        )
        for row in rows:
            yield _entry(row)
        if len(rows) < batch:
            break
        last_seq = rows[-1].seq or 0
    for row in AuditEvent.select().where(AuditEvent.seq.is_null()).order_by(AuditEvent.id):
        yield _entry(row)


def _entry(row: AuditEvent) -> audit_chain.Entry:
    return audit_chain.Entry(
        id=row.id,
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        call_id=row.call_id,
        appointment_id=row.appointment_id,
        detail=row.detail,
        address=row.address,
        nonce=row.nonce,
        content_hash=row.content_hash,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def add_checkpoint(point: audit_chain.Checkpoint) -> audit_chain.Checkpoint:
    row = AuditCheckpoint.create(
        at=point.at,
        entries=point.entries,
        head_hash=point.head_hash,
        public_key=point.public_key,
        signature=point.signature,
    )
    return _checkpoint(row)


def checkpoints(limit: int | None = None) -> list[audit_chain.Checkpoint]:
    """The stored checkpoints, newest first (all of them without a limit)."""
    query = AuditCheckpoint.select().order_by(AuditCheckpoint.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [_checkpoint(row) for row in query]


def _checkpoint(row: AuditCheckpoint) -> audit_chain.Checkpoint:
    return audit_chain.Checkpoint(
        id=row.id,
        at=row.at,
        entries=row.entries,
        head_hash=row.head_hash,
        public_key=row.public_key,
        signature=row.signature,
    )
