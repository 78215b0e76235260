"""A call as the API and the webhooks tell it: the call, its appointment, its people, presence.

GET /api/video-calls/{ref} and the webhook payloads' `videoCall` and `presence` are built by
the same functions here, so the two can never drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, Protocol, cast

from msgspec import Meta

from service.domain.model import (
    Action,
    EndReason,
    Missing,
    ReportOutcome,
    Role,
    settled_of,
    verification_of,
)
from service.fields import is_https_url
from service.jitsi import IssuedToken, describe_lifetime, is_moderator
from service.store import models
from service.store.rows import AppointmentRecord, CallRecord, SessionRecord, UserRecord
from service.wire.base import (
    ROLES,
    AppointmentStatusValue,
    CallStatusValue,
    Clock,
    Count,
    Date,
    Iso,
    Party,
    RecordingMode,
    SettledValue,
    Shape,
    VerificationValue,
    const,
    iso,
    one_of,
)

# What the use cases return (records), or a row read in the caller's transaction (the
# webhook outbox builds its bodies from those, on the ingest path, without copying them).
CallLike = CallRecord | models.VideoCall


class ClientReportLike(Protocol):
    """A client's report as the use case returns it (service.calls.ClientReport)."""

    @property
    def uid(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def at(self) -> int: ...
    @property
    def outcome(self) -> str: ...


SessionLike = SessionRecord | models.OccupantSession
NULL_UNTIL = "; null until it happens"


class VideoCallSummary(Shape):
    id: Annotated[str, Meta(description="The video call's id")]
    appointment_id: str
    room_name: Annotated[str, Meta(description="`appointment_{appointmentId}`, lower-cased")]
    status: CallStatusValue


class Recording(Shape):
    started_at: Annotated[Iso, Meta(description="The recorder joined")]
    ended_at: Annotated[Iso | None, Meta(description="The recorder left" + NULL_UNTIL)]
    mode: RecordingMode | None


_WAIT = (
    "From the {}'s first presence (room or lobby) to the start; for a NO_SHOW, to their last "
    "departure; null while the call has neither started nor ended"
)


class VideoCall(Shape):
    id: str
    appointment_id: str
    room_name: str
    status: CallStatusValue
    started_at: Annotated[Iso | None, Meta(description="When the call started" + NULL_UNTIL)]
    ended_at: Annotated[Iso | None, Meta(description="When the call ended" + NULL_UNTIL)]
    duration: Annotated[Count | None, Meta(description="Seconds, once the call has ended")]
    doctor_joined_at: Annotated[
        Iso | None, Meta(description="The doctor's first join" + NULL_UNTIL)
    ]
    patient_joined_at: Annotated[
        Iso | None, Meta(description="The patient's first join" + NULL_UNTIL)
    ]
    doctor_wait_seconds: Annotated[Count | None, Meta(description=_WAIT.format("doctor"))]
    patient_wait_seconds: Annotated[Count | None, Meta(description=_WAIT.format("patient"))]
    recordings: Annotated[
        list[Recording], Meta(description="Each recorder occupant's stay (Jibri), in start order")
    ]
    created_at: Annotated[Iso, Meta(description="Creation")]
    updated_at: Annotated[Iso, Meta(description="Last change")]
    verification: VerificationValue
    settled: SettledValue


class Appointment(Shape):
    id: str
    appointment_date: Annotated[Date, Meta(description="In `timezone`")]
    start_time: Clock
    end_time: Clock
    timezone: Annotated[str, Meta(description="IANA time zone name")]
    status: AppointmentStatusValue


class Participant(Shape):
    uid: str
    first_name: str
    last_name: str
    email: str | None
    profile_image_url: str | None


class AppointmentWithParticipants(Appointment):
    doctor: Participant | None
    patient: Participant | None


class VideoCallListItem(VideoCall):
    appointment: AppointmentWithParticipants


class VideoCallList(Shape):
    message: Annotated[str, const("Video calls retrieved successfully")]
    count: Annotated[Count, Meta(description="Items on this page")]
    video_calls: list[VideoCallListItem]
    next_cursor: Annotated[
        str | None,
        Meta(description="Pass as `cursor` for the next page; null on the last page"),
    ]


class TokenGrant(Shape):
    message: Annotated[
        str, one_of(["Video call initiated successfully", "Token retrieved successfully"])
    ]
    video_call: VideoCallSummary
    jitsi_token: Annotated[str, Meta(description="HS256 JWT for Jitsi (token_verification)")]
    meeting_link: Annotated[
        str,
        Meta(
            description="`https://{JITSI_DOMAIN}/{roomName}?jwt={jitsiToken}`",
            extra_json_schema={"format": "uri"},
        ),
    ]
    # What `new JitsiMeetExternalAPI(domain, ...)` needs; frontends must not parse the link.
    domain: Annotated[
        str,
        Meta(
            description="Jitsi Meet's host (`JITSI_DOMAIN`): the first argument of "
            "`new JitsiMeetExternalAPI(domain, ...)` and where `external_api.js` is served"
        ),
    ]
    user_role: Party
    is_moderator: Annotated[bool, Meta(description="True for the doctor only")]
    expires_in: Annotated[str, Meta(description='The token lifetime in words, e.g. "3 hours"')]
    expires_at: Annotated[Iso, Meta(description="When jitsiToken expires")]


class StatusUpdated(Shape):
    message: Annotated[str, const("Video call status updated successfully")]
    video_call: VideoCall


class Waiting(Shape):
    """Before the start: the party present while the other is not in the room; null otherwise"""

    role: Party
    since: Annotated[Iso, Meta(description="The waiting party's first presence")]


class LobbyVisit(Shape):
    role: Annotated[str, one_of(["doctor", "patient", "other"])]
    joined_at: Annotated[Iso, Meta(description="The knock")]
    left_at: Annotated[Iso | None, Meta(description="Admitted, denied or gone" + NULL_UNTIL)]
    reason: Annotated[
        str | None,
        Meta(
            description="admitted, denied, left, unknown, or a repair (prosody_restart, "
            "snapshot_repair, host_silent, sweeper); null while knocking"
        ),
    ]
    repaired: bool


class PresenceSession(Shape):
    role: Annotated[str, one_of(ROLES)]
    joined_at: Annotated[Iso, Meta(description="Join")]
    left_at: Annotated[Iso | None, Meta(description="Leave" + NULL_UNTIL)]
    end_reason: Annotated[str, one_of([r.value for r in EndReason])] | None
    repaired: bool
    left_at_latest: Annotated[
        Iso | None,
        Meta(
            description="Repaired sessions: the earliest later moment known gone "
            "(null: unknown, or not repaired)" + NULL_UNTIL
        ),
    ]


class Presence(Shape):
    """What Prosody saw: each role's time in the room and its occupant sessions"""

    tracked_by_server: Annotated[
        bool, Meta(description="Prosody's events, not client reports, drive this call")
    ]
    doctor_presence: Count | None
    patient_presence: Count | None
    missing: Annotated[
        Annotated[str, one_of([m.value for m in Missing])] | None,
        Meta(description="Who never joined, for a NO_SHOW call"),
    ]
    duration_uncertain: Annotated[
        bool,
        Meta(
            description="A repaired session's unknown end bounds the counted overlap "
            "(docs/events.md): the true duration lies within its sessions' bounds"
        ),
    ]
    waiting: Waiting | None
    lobby: Annotated[list[LobbyVisit], Meta(description="Knocks in Jitsi's lobby, in time order")]
    sessions: list[PresenceSession]


class DetailsPresence(Presence):
    """What Prosody saw, and through which receiver (the call's details; webhooks omit it)"""

    source: Annotated[
        Annotated[str, one_of(["v1", "event_sync"])] | None,
        Meta(
            description="The receiver Prosody's events of this call came through: `v1` (the "
            "signed module), `event_sync` (the stock module, unsigned; also when only some "
            "events came that way), null (none yet)"
        ),
    ]


class ClientReport(Shape):
    """A participant's status report as audited (`advisory`: it changed nothing)"""

    uid: Annotated[str, Meta(description="Who reported")]
    action: Annotated[str, one_of([a.value for a in Action])]
    at: Annotated[Iso, Meta(description="When the service received it")]
    outcome: Annotated[str, one_of([o.value for o in ReportOutcome])]


class VideoCallDetails(Shape):
    message: Annotated[str, const("Video call details retrieved successfully")]
    appointment: Appointment
    video_call: VideoCall
    doctor: Participant | None
    patient: Participant | None
    presence: DetailsPresence
    client_reports: Annotated[
        list[ClientReport], Meta(description="Every client status report, oldest first")
    ]


# --- built from records ------------------------------------------------------------------


def call_summary(call: CallLike) -> VideoCallSummary:
    return VideoCallSummary(
        id=call.id, appointment_id=call.appointment_id, room_name=call.room_name, status=call.status
    )


def _call_fields(call: CallLike) -> dict[str, Any]:
    return {
        "id": call.id,
        "appointment_id": call.appointment_id,
        "room_name": call.room_name,
        "status": call.status,
        "started_at": iso(call.started_at),
        "ended_at": iso(call.ended_at),
        "duration": call.duration,
        "doctor_joined_at": iso(call.doctor_joined_at),
        "patient_joined_at": iso(call.patient_joined_at),
        "doctor_wait_seconds": call.doctor_wait,
        "patient_wait_seconds": call.patient_wait,
        "recordings": [
            Recording(started_at=iso(r["started_at"]), ended_at=iso(r["ended_at"]), mode=r["mode"])
            for r in json.loads(call.recordings or "[]")
        ],
        "created_at": iso(call.created_at),
        "updated_at": iso(call.updated_at),
        "verification": verification_of(bool(call.tracked_by_server)).value,
        "settled": _settled(call),
    }


def _settled(call: CallLike) -> str | None:
    settled = settled_of(call.status, call.provisional_since)
    return None if settled is None else settled.value


def call_full(call: CallLike) -> VideoCall:
    return VideoCall(**_call_fields(call))


def _appointment_fields(record: AppointmentRecord | models.Appointment) -> dict[str, Any]:
    return {
        "id": record.id,
        "appointment_date": record.appointment_date,
        "start_time": record.start_time,
        "end_time": record.end_time,
        "timezone": record.timezone,
        "status": record.status,
    }


def appointment(record: AppointmentRecord | models.Appointment) -> Appointment:
    return Appointment(**_appointment_fields(record))


def participant(record: UserRecord | models.User | None) -> Participant | None:
    if record is None:
        return None
    return Participant(
        uid=record.uid,
        first_name=record.first_name,
        last_name=record.last_name,
        email=record.email,
        # A legacy value stored before imports took https only never reaches a browser.
        profile_image_url=(
            record.profile_image_url if is_https_url(record.profile_image_url) else None
        ),
    )


def lobby_of(call: CallLike) -> list[LobbyVisit]:
    """Each knock in Jitsi's lobby: who, when, how it ended (admitted, denied, left...)."""
    return [
        LobbyVisit(
            role=v["role"],
            joined_at=iso(v["joined_at"]),
            left_at=iso(v["left_at"]),
            reason=v["reason"],
            repaired=v["repaired"],
        )
        for v in json.loads(call.lobby_visits or "[]")
    ]


def presence_of(call: CallLike, sessions: Sequence[SessionLike]) -> Presence:
    """What Prosody saw: each role's time in the room and every occupant session."""
    return Presence(
        tracked_by_server=bool(call.tracked_by_server),
        doctor_presence=call.doctor_presence,
        patient_presence=call.patient_presence,
        missing=call.missing,
        duration_uncertain=bool(call.duration_uncertain),
        waiting=(
            # Stored together (domain.presence.Waiting): a role comes with its `since`.
            Waiting(role=call.waiting_role, since=cast(str, iso(call.waiting_since)))
            if call.waiting_role is not None
            else None
        ),
        lobby=lobby_of(call),
        sessions=[
            PresenceSession(
                role=s.role,
                joined_at=iso(s.joined_at),
                left_at=iso(s.left_at),
                end_reason=s.end_reason,
                repaired=bool(s.repaired),
                left_at_latest=iso(s.left_at_latest),
            )
            for s in sessions
            if s.counted and s.joined_at is not None
        ],
    )


def list_item(
    call: CallLike,
    record: AppointmentRecord | models.Appointment,
    doctor: UserRecord | None,
    patient: UserRecord | None,
) -> VideoCallListItem:
    return VideoCallListItem(
        **_call_fields(call),
        appointment=AppointmentWithParticipants(
            **_appointment_fields(record), doctor=participant(doctor), patient=participant(patient)
        ),
    )


def video_call_list(items: list[VideoCallListItem], next_cursor: str | None) -> VideoCallList:
    return VideoCallList(
        message="Video calls retrieved successfully",
        count=len(items),
        video_calls=items,
        next_cursor=next_cursor,
    )


def token_grant(
    message: str,
    call: CallLike,
    role: Role,
    token: IssuedToken,
    link: str,
    domain: str,
) -> TokenGrant:
    return TokenGrant(
        message=message,
        video_call=call_summary(call),
        jitsi_token=token.token,
        meeting_link=link,
        domain=domain,
        user_role=role.value,
        is_moderator=is_moderator(role),
        expires_in=describe_lifetime(token.lifetime),
        expires_at=iso(token.expires_at * 1000),
    )


def details(
    call: CallLike,
    record: AppointmentRecord | models.Appointment,
    doctor: UserRecord | None,
    patient: UserRecord | None,
    sessions: Sequence[SessionLike],
    source: str | None = None,
    reports: Sequence[ClientReportLike] = (),
) -> VideoCallDetails:
    seen = presence_of(call, sessions)
    return VideoCallDetails(
        message="Video call details retrieved successfully",
        appointment=appointment(record),
        video_call=call_full(call),
        doctor=participant(doctor),
        patient=participant(patient),
        presence=DetailsPresence(
            **{f: getattr(seen, f) for f in seen.__struct_fields__}, source=source
        ),
        client_reports=[
            ClientReport(uid=r.uid, action=r.action, at=iso(r.at), outcome=r.outcome)
            for r in reports
        ],
    )
