"""What follows a call's change of status, shared by every use case that changes one.

A transition is audited, told to the clinic (the webhook outbox), and moves the appointment
along when the rules say so; so is a correction (late events changed a settled record); all
of it in the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from service.config import Settings
from service.domain import rules
from service.domain.model import CallStatus
from service.store import audit_log, clinic, hosts, video_calls
from service.store.models import VideoCall
from service.webhooks import outbox


def record_transition(
    call: VideoCall,
    before: CallStatus,
    after: CallStatus,
    actor: str,
    at: int,
    cause: str,
    **detail: str,
) -> None:
    """Audit a call's transition, tell the clinic, and move its appointment along when the
    rules say so."""
    audit_log.audit(
        actor,
        "call.transition",
        at,
        call.id,
        call.appointment_id,
        {"from": before.value, "to": after.value, "cause": cause, **detail},
    )
    outbox.observe(call.id, at)
    target = rules.APPOINTMENT_FOLLOWS.get(after)
    if target is None:
        return
    if clinic.set_appointment_status(
        call.appointment_id, target, rules.appointment_sources(target), at
    ):
        audit_log.audit(
            actor,
            "appointment.transition",
            at,
            call.id,
            call.appointment_id,
            {"to": target.value, "cause": cause},
        )


def record_correction(
    call: VideoCall,
    before: CallStatus,
    after: CallStatus,
    actor: str,
    at: int,
    cause: str,
    evidence: tuple[str, ...],
    previous: dict[str, Any],
    corrected: dict[str, Any],
) -> None:
    """Audit a correction (late events changed a settled record: `before` -> `after`, which
    may be the same status with other times), tell the clinic, and move the appointment back
    along with the call (rules.appointment_correction).

    The clinic hears it as the status message of the corrected record, with the next sequence
    (service/webhooks/messages.py `plan`: a changed status or outcome is told again)."""
    audit_log.audit(
        actor,
        "call.corrected",
        at,
        call.id,
        call.appointment_id,
        {
            "from": before.value,
            "to": after.value,
            "cause": cause,
            "events": list(evidence),
            "previous": previous,
            "corrected": corrected,
        },
    )
    outbox.observe(call.id, at)
    moved = rules.appointment_correction(before, after)
    if moved is None:
        return
    target, sources = moved
    if clinic.set_appointment_status(call.appointment_id, target, sources, at):
        audit_log.audit(
            actor,
            "appointment.transition",
            at,
            call.id,
            call.appointment_id,
            {"to": target.value, "cause": cause, "correction": True},
        )


def mark_provisional(settings: Settings, call: VideoCall, decided: int | None, at: int) -> None:
    """A call settled at `decided` (None: open) is provisional while a host has not been heard
    past it (rules.provisional_since); the sweep makes it final once every host has
    (sweeper.py)."""
    since = None
    if settings.server_tracks_presence and decided is not None:
        horizon_ms = settings.correction_horizon * 1000
        since = rules.provisional_since(decided, hosts.heard_until(), at, horizon_ms)
    if since != call.provisional_since:
        video_calls.set_provisional(call.id, since)


def follow_cancelled_appointment(appointment_id: str, actor: str, at: int) -> None:
    """The clinic cancelled the appointment: a call that has not started is cancelled too
    (otherwise the sweeper would later call it a NO_SHOW). Runs in the caller's transaction."""
    call = video_calls.get_call_by_appointment(appointment_id)
    if call is not None and video_calls.transition_call(
        call.id, [CallStatus.SCHEDULED], CallStatus.CANCELLED, at
    ):
        record_transition(
            call, CallStatus.SCHEDULED, CallStatus.CANCELLED, actor, at, "appointment_cancelled"
        )
