"""The audit log: who did what to which call or appointment, and when; one call's trail.

Rows are written in the caller's transaction, so an audited change and its audit row commit
together (store/uow.py).
"""

from __future__ import annotations

import json
from typing import Any

from service.store.compiled import Compiled
from service.store.models import AuditEvent

_AUDIT = Compiled(
    lambda at, actor, action, call, appointment, detail: AuditEvent.insert(
        at=at,
        actor=actor,
        action=action,
        call_id=call,
        appointment_id=appointment,
        detail=detail,
    ),
    -1,
    "actor",
    "action",
    "call",
    "appointment",
    "detail",
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
) -> None:
    _AUDIT.execute(
        now_ms,
        actor,
        action,
        call_id,
        appointment_id,
        json.dumps(detail or {}, sort_keys=True, separators=(",", ":")),
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
