"""Use cases for video calls: each runs in one unit of work (store/uow.py) and returns plain
records (store/rows.py) that the HTTP layer shapes.

Functions here are synchronous (peewee is); the web layer runs them in a worker thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from service import jitsi
from service.clock import now_ms, now_s
from service.config import Settings
from service.domain import rules
from service.domain.model import (
    Action,
    AppointmentStatus,
    CallStatus,
    ReportOutcome,
    Role,
    role_in,
    room_name_for,
)
from service.domain.names import display_name
from service.errors import BadRequest, Conflict, Forbidden, NotFound
from service.store import audit_log, call_lists, clinic, uow, video_calls
from service.store import event_log as event_store
from service.store.models import Appointment, AuditEvent, User, VideoCall
from service.store.rows import (
    AppointmentRecord,
    CallRecord,
    SessionRecord,
    UserRecord,
    record_of,
)
from service.transitions import record_transition
from service.webhooks import outbox


@dataclass(frozen=True)
class TokenGrant:
    call: CallRecord
    role: Role
    token: jitsi.IssuedToken
    link: str
    domain: str


@dataclass(frozen=True)
class ClientReport:
    """One client status report on a call, as audited: who, what, when, and what it did."""

    uid: str
    action: str
    at: int
    outcome: ReportOutcome


@dataclass(frozen=True)
class CallView:
    """A call with everything its details response needs."""

    call: CallRecord
    appointment: AppointmentRecord
    doctor: UserRecord | None
    patient: UserRecord | None
    sessions: tuple[SessionRecord, ...] = ()
    # The receiver its Prosody events came through (event_log.room_source); details only.
    source: str | None = None
    # The clients' status reports, whatever they changed (details only).
    reports: tuple[ClientReport, ...] = ()


@dataclass(frozen=True)
class CallPage:
    items: list[CallView]
    next_cursor: call_lists.Cursor | None


def _not_participant() -> Forbidden:
    # The one answer for anyone who is not a participant, whether the appointment or call
    # exists or not: a stranger learns nothing about which ids exist or were started.
    return Forbidden("You are not a participant of this appointment", "not_participant")


def _participant_role(record: Appointment | VideoCall | None, uid: str) -> Role:
    """The caller's role in `record`; None (no such appointment or call) is refused the same
    way as a stranger to an existing one."""
    role = Role.OTHER if record is None else role_in(record.doctor_uid, record.patient_uid, uid)
    if role is Role.OTHER:
        raise _not_participant()
    return role


def _require_active(appointment: Appointment | VideoCall) -> dict[str, User]:
    users = clinic.get_users([appointment.doctor_uid, appointment.patient_uid])
    for uid in (appointment.doctor_uid, appointment.patient_uid):
        user = users.get(uid)
        if user is None or not user.is_active:
            raise Forbidden("Doctor or patient account is not active", "account_inactive")
    return users


def _require_active_caller(uid: str, users: dict[str, User] | None = None) -> None:
    """The caller's own account must be known and active, on every video-call endpoint."""
    user = (users if users is not None and uid in users else clinic.get_users([uid])).get(uid)
    if user is None or not user.is_active:
        raise Forbidden("Your account is not active", "account_inactive")


def _grant(settings: Settings, call: CallRecord, user: UserRecord, role: Role) -> TokenGrant:
    participant = jitsi.Participant(
        uid=user.uid,
        name=display_name(user.uid, user.first_name, user.last_name, role),
        email=user.email,
        avatar=user.profile_image_url,
        role=role,
    )
    token = jitsi.mint_token(settings, participant, call.room_name, now_s())
    link = jitsi.meeting_link(settings, call.room_name, token.token)
    return TokenGrant(call, role, token, link, settings.jitsi_domain)


def initiate(settings: Settings, uid: str, appointment_id: str) -> TokenGrant:
    with uow.read():
        call, user, role = _open_call(uid, appointment_id, settings.server_tracks_presence)
    return _grant(settings, call, user, role)


def _open_call(
    uid: str, appointment_id: str, tracked_by_server: bool
) -> tuple[CallRecord, UserRecord, Role]:
    """The appointment's call, created (or reset after a failure) if need be, and audited.
    `tracked_by_server`: a new call's presence is Prosody's to report (PRESENCE_SOURCE)."""
    appointment = clinic.get_appointment(appointment_id)
    role = _participant_role(appointment, uid)
    assert appointment is not None
    users = _require_active(appointment)
    status = AppointmentStatus(appointment.status)
    if not rules.can_initiate(status):
        raise BadRequest(
            "Appointment must be CONFIRMED or IN_PROGRESS to start a video call",
            "appointment_not_active",
            currentStatus=status.value,
        )
    if appointment.room_key != room_name_for(appointment.id):
        # Stored before migration 0011 beside an id differing only in case, which owns the room.
        raise Conflict(
            "Another appointment's id differs from this one only in letter case and holds its "
            "Jitsi room: the clinic must rename one of them",
            "room_conflict",
        )
    user = record_of(UserRecord, users[uid])
    existing = video_calls.get_call_by_appointment(appointment.id)
    if existing is not None and CallStatus(existing.status) in rules.JOINABLE_STATUSES:
        # The common case (the second participant, a reload): nothing to create or reset,
        # only the audit entry to write.
        with uow.write():
            audit_log.audit(
                uid, "token.issued", now_ms(), existing.id, appointment.id, {"role": role.value}
            )
        return record_of(CallRecord, existing), user, role
    with uow.write():
        at = now_ms()
        call, created = video_calls.create_call_if_missing(
            appointment, room_name_for(appointment.id), at, tracked_by_server=tracked_by_server
        )
        if created:
            audit_log.audit(uid, "call.created", at, call.id, appointment.id)
            outbox.observe(call.id, at)
        current = CallStatus(call.status)
        if current is CallStatus.FAILED:
            # A retry after a technical failure starts the call afresh.
            if video_calls.transition_call(
                call.id,
                [CallStatus.FAILED],
                CallStatus.SCHEDULED,
                at,
                started_at=None,
                ended_at=None,
                duration=None,
                doctor_joined_at=None,
                patient_joined_at=None,
            ):
                record_transition(
                    call, CallStatus.FAILED, CallStatus.SCHEDULED, uid, at, "initiate"
                )
            call = video_calls.get_call(call.id) or call
        elif current not in rules.JOINABLE_STATUSES:
            raise Conflict(
                f"Video call is {current.value}", "call_closed", currentStatus=current.value
            )
        audit_log.audit(uid, "token.issued", at, call.id, appointment.id, {"role": role.value})
    return record_of(CallRecord, call), user, role


def refresh_token(settings: Settings, uid: str, ref: str) -> TokenGrant:
    with uow.read():
        call = _find_call(ref, uid)
        role = _participant_role(call, uid)
        users = _require_active(call)
        current = CallStatus(call.status)
        if current not in rules.JOINABLE_STATUSES:
            raise Conflict(
                f"Video call is {current.value}", "call_closed", currentStatus=current.value
            )
        with uow.write():
            audit_log.audit(
                uid, "token.issued", now_ms(), call.id, call.appointment_id, {"role": role.value}
            )
    return _grant(settings, record_of(CallRecord, call), record_of(UserRecord, users[uid]), role)


def _find_call(ref: str, uid: str) -> VideoCall:
    """The call `ref` names (an appointment id or a call id), for one of its participants.

    Anyone else gets the same 403 whether the appointment or call exists or not, after the
    same two look-ups: participants, the common case, need only the first. A participant whose
    appointment has no call yet gets the 404 that tells them to initiate it.
    """
    call = video_calls.find_call(ref)
    if call is not None and role_in(call.doctor_uid, call.patient_uid, uid) is not Role.OTHER:
        return call
    appointment = clinic.get_appointment(ref)
    if call is None and appointment is not None:
        _participant_role(appointment, uid)
        raise NotFound("Video call not initiated for this appointment", "video_call_not_found")
    raise _not_participant()


def report_status(uid: str, ref: str, action: Action) -> CallRecord:
    """Apply a client's status report under the status rules; returns the call afterwards."""
    with uow.read():
        call = _find_call(ref, uid)
        role = _participant_role(call, uid)
        _require_active_caller(uid)
        try:
            return record_of(CallRecord, _report(call, uid, role, action))
        except Conflict as refused:
            # The refused report rolled back with its transaction; it is still worth a record.
            with uow.write():
                audit_log.audit(
                    uid,
                    audit_log.CLIENT_REPORT,
                    now_ms(),
                    call.id,
                    call.appointment_id,
                    {"action": action.value, "refused": refused.extra.get("currentStatus")},
                )
            raise


def _report(call: VideoCall, uid: str, role: Role, action: Action) -> VideoCall:
    with uow.write():
        # Read the clock once the write lock is held, so times follow commit order.
        at = now_ms()
        locked = video_calls.lock_call(call.id)
        advisory = rules.client_report_is_advisory(
            action,
            tracked_by_server=bool(locked.tracked_by_server),
            # With server tracking, started_at is when Prosody first saw both.
            seen_together=locked.started_at is not None,
        )
        audit_log.audit(
            uid,
            audit_log.CLIENT_REPORT,
            at,
            call.id,
            call.appointment_id,
            {"action": action.value, "advisory": advisory},
        )
        if advisory:
            return locked
        before = CallStatus(locked.status)
        _apply_action(locked, role, action, at)
        after = video_calls.get_call(call.id)
        assert after is not None
        if CallStatus(after.status) is not before:
            record_transition(after, before, CallStatus(after.status), uid, at, "client_report")
        else:
            outbox.observe(call.id, at)  # a first join: someone may be waiting now
        return after


def _apply_action(call: VideoCall, role: Role, action: Action, at: int) -> None:
    """`call` was read under the write lock: its start is the one the end is measured from."""
    if action is Action.JOIN:
        field = rules.join_field(role)
        assert field is not None  # participants only reach here
        if not video_calls.record_first_join(call.id, field, at, rules.JOINABLE_STATUSES):
            _refuse(call.id, CallStatus.IN_PROGRESS)
        video_calls.start_if_both_joined(call.id, at)
        return
    target = rules.ACTION_TARGETS[action]
    sources = rules.allowed_sources(target)
    if action is Action.END:
        done = video_calls.end_call(call.id, sources, at, *rules.client_end(call.started_at, at))
    elif action is Action.START:
        if not rules.client_start_allowed(
            CallStatus(call.status), call.doctor_joined_at, call.patient_joined_at
        ):
            raise Conflict(
                "Both the doctor and the patient must join before the video call can start",
                "participants_not_joined",
                currentStatus=call.status,
            )
        done = video_calls.transition_call(call.id, sources, target, at, started_at=at)
    else:
        done = video_calls.transition_call(call.id, sources, target, at)
    if not done:
        _refuse(call.id, target)


def _refuse(call_id: str, target: CallStatus) -> None:
    """The conditional update matched nothing: a repeat of the same report is a no-op."""
    fresh = video_calls.get_call(call_id)
    current = CallStatus(fresh.status) if fresh is not None else None
    if current is target:
        return
    status = current.value if current is not None else "UNKNOWN"
    raise Conflict(
        f"Cannot change video call status from {status} to {target.value}",
        "invalid_transition",
        currentStatus=status,
    )


def details(uid: str, ref: str) -> CallView:
    with uow.read():
        call = _find_call(ref, uid)
        appointment = clinic.get_appointment(call.appointment_id)
        if appointment is None:
            raise NotFound("Appointment not found", "appointment_not_found")
        users = clinic.get_users([call.doctor_uid, call.patient_uid])
        _require_active_caller(uid, users)
        sessions = tuple(record_of(SessionRecord, s) for s in event_store.sessions_of(call.id))
        source = event_store.room_source(call.room_name)
        reports = tuple(_report_of(row) for row in audit_log.reports_of(call.id))
    return CallView(
        record_of(CallRecord, call),
        record_of(AppointmentRecord, appointment),
        _user(users.get(call.doctor_uid)),
        _user(users.get(call.patient_uid)),
        sessions,
        source,
        reports,
    )


def _report_of(row: AuditEvent) -> ClientReport:
    detail = json.loads(row.detail or "{}")
    if "refused" in detail:
        outcome = ReportOutcome.REFUSED
    elif detail.get("advisory"):
        outcome = ReportOutcome.ADVISORY
    else:
        outcome = ReportOutcome.APPLIED
    return ClientReport(row.actor, str(detail.get("action", "")), row.at, outcome)


def _user(row: User | None) -> UserRecord | None:
    return None if row is None else record_of(UserRecord, row)


def _paged(listed: list[call_lists.Listed], limit: int) -> CallPage:
    has_more = len(listed) > limit
    views = [CallView(*item) for item in listed[:limit]]
    last = views[-1].call if has_more and views else None
    return CallPage(views, call_lists.Cursor(last.created_at, last.id) if last else None)


def list_for_user(
    uid: str, status: CallStatus | None, cursor: call_lists.Cursor | None, limit: int
) -> CallPage:
    with uow.read():
        _require_active_caller(uid)
        return _paged(call_lists.for_user(uid, status, cursor, limit + 1), limit)


def list_for_admin(
    status: CallStatus | None, cursor: call_lists.Cursor | None, limit: int
) -> CallPage:
    with uow.read():
        return _paged(call_lists.by_status(status, cursor, limit + 1), limit)


@dataclass(frozen=True)
class Stats:
    total_calls: int
    total_duration: int
    avg_duration: float | None
    by_status: dict[str, int]
    avg_patient_wait: float | None = None
    # The same totals over the calls the server measured (verification: server) only.
    verified: Stats | None = None


def stats_for_doctor(uid: str, date_from: str | None, date_to: str | None) -> Stats:
    with uow.read():
        _require_active_caller(uid)
        every = video_calls.doctor_stats(uid, date_from, date_to)
        verified = video_calls.doctor_stats(uid, date_from, date_to, verified_only=True)
    return _stats(*every, verified=_stats(*verified))


def _stats(
    counts: dict[str, int],
    totals: tuple[int, int, float | None, float | None],
    verified: Stats | None = None,
) -> Stats:
    total, duration, avg, avg_wait = totals
    by_status = {s.value: counts.get(s.value, 0) for s in CallStatus}
    return Stats(total, duration, avg, by_status, avg_wait, verified)
