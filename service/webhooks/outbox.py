"""The transactional outbox: messages written in the transaction of the change they tell.

`observe` is the one hook: the use cases call it (inside their write transaction) after
anything that may change what a call's record says. It plans the messages still owed
(service.webhooks.messages) and inserts them with the call's next sequence numbers, so a
rollback takes the messages with it and a commit makes them durable before any 2xx.
The operators' list and retries are here too; the tables' queries are store/outbox.py's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from service.clock import now_ms
from service.domain.model import CallStatus
from service.operators import ADMIN, Who
from service.store import audit_log, call_lists, uow, video_calls
from service.store import event_log as event_store
from service.store import outbox as outbox_store
from service.store.models import OccupantSession, VideoCall
from service.store.outbox import DELIVERED as DELIVERED
from service.store.outbox import FAILED as FAILED
from service.store.outbox import PENDING as PENDING
from service.store.outbox import STATUSES as STATUSES
from service.store.rows import MessageRecord, record_of
from service.webhooks import messages
from service.webhooks.messages import CallFacts, Planned, RecordingFacts, SessionFacts, Told
from service.wire.base import iso
from service.wire.calls import call_full, presence_of

# Delivered messages are kept this long for operators, then the sweeper deletes them.
RETENTION_MS = 30 * 86_400_000

_enabled = False


def configure(enabled: bool) -> None:
    """Whether changes write messages at all (WEBHOOK_URL set); called where settings load."""
    global _enabled
    _enabled = enabled


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _facts(call: VideoCall, sessions: Sequence[OccupantSession]) -> CallFacts:
    return CallFacts(
        status=CallStatus(call.status),
        started_at=call.started_at,
        ended_at=call.ended_at,
        duration=call.duration,
        doctor_joined_at=call.doctor_joined_at,
        patient_joined_at=call.patient_joined_at,
        doctor_presence=call.doctor_presence,
        patient_presence=call.patient_presence,
        missing=call.missing,
        sessions=tuple(
            SessionFacts(s.session, s.role, s.joined_at, s.left_at, s.end_reason, bool(s.counted))
            for s in sessions
        ),
        waiting_role=call.waiting_role,
        waiting_since=call.waiting_since,
        recordings=tuple(
            RecordingFacts(r["session"], r["started_at"], r["ended_at"], r["mode"])
            for r in json.loads(call.recordings or "[]")
        ),
    )


def _record(call: VideoCall, sessions: Sequence[OccupantSession]) -> dict[str, Any]:
    """`videoCall` and `presence` exactly as GET /api/video-calls/{ref} shapes them."""
    shapes = {"videoCall": call_full(call), "presence": presence_of(call, sessions)}
    record: dict[str, Any] = msgspec.to_builtins(shapes)
    return record


def body(type_: str, at: int, data: dict[str, Any]) -> str:
    document = {"type": type_, "timestamp": iso(at), "data": data}
    return json.dumps(document, separators=(",", ":"))


def observe(call_id: str, at: int) -> int:
    """Write the messages the call's current record owes the clinic; returns how many.

    Runs in the caller's write transaction and holds the call's row lock, so two replicas
    changing one call take turns and number its messages without gaps or repeats.
    """
    if not _enabled:
        return 0
    call = video_calls.lock_call(call_id)
    sessions = event_store.sessions_of(call_id)
    state = outbox_store.told_state(call_id)
    told = Told.from_json(state.state) if state is not None else Told()
    planned, now_told = messages.plan(told, _facts(call, sessions))
    if not planned:
        return 0
    record = _record(call, sessions)
    sequence = state.sequence if state is not None else 0
    for item in planned:
        sequence += 1
        _insert(call, messages.with_iso_times(item, iso), sequence, record, at)
    outbox_store.save_told_state(call_id, sequence, now_told.to_json())
    return len(planned)


def _insert(call: VideoCall, item: Planned, sequence: int, record: dict[str, Any], at: int) -> None:
    data = {"appointmentId": call.appointment_id, "sequence": sequence, **record, **item.extra}
    outbox_store.insert_message(
        new_message_id(),
        item.type,
        call.id,
        call.appointment_id,
        sequence,
        body(item.type, at, data),
        at,
    )


# --- operators ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MessagePage:
    items: list[MessageRecord]
    next_cursor: call_lists.Cursor | None


def list_messages(status: str | None, cursor: call_lists.Cursor | None, limit: int) -> MessagePage:
    with uow.read():
        rows = outbox_store.message_page(status, cursor, limit)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = call_lists.Cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return MessagePage([record_of(MessageRecord, row) for row in rows], next_cursor)


def retry(message_id: str, who: Who = ADMIN) -> MessageRecord | None:
    """Queue a failed (or waiting) message again at once; None if there is no such message.

    A delivered message is left as it is and returned: sending it again is a new test, not a
    retry. A message found is an operator's action, audited.
    """
    with uow.write():
        at = now_ms()
        found = outbox_store.requeue(message_id, at)
        if found is not None:
            # Asked for, whatever came of it (a delivered message stays as it is).
            detail = {"message": message_id, "status": found.status}
            audit_log.audit(who.actor, "webhook.retried", at, detail=detail, address=who.address)
    return None if found is None else record_of(MessageRecord, found)


def retry_failed() -> int:
    with uow.write():
        return outbox_store.requeue_failed(now_ms())
