"""JSON shapes of the API document: camelCase fields, ISO-8601 UTC times with milliseconds."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from service.jitsi import describe_lifetime
from service.store.models import Appointment, OccupantSession, User, VideoCall
from service.store.rows import (
    AppointmentRecord,
    CallRecord,
    HostRecord,
    SessionRecord,
    UserRecord,
)

# What the use cases return (records), or a row read in the caller's transaction (the
# webhook outbox builds its bodies from those, on the ingest path, without copying them).
CallLike = CallRecord | VideoCall
SessionLike = SessionRecord | OccupantSession

if TYPE_CHECKING:  # annotations only: the use cases' outbox builds its bodies with these shapes
    from service.calls import CallView, Stats, TokenGrant


def iso(ms: int | None) -> str | None:
    """`2025-10-18T10:30:00.000Z`. Plain integer formatting: this runs for every time field
    of every row of a list, and datetime + strftime was the list's hottest frame."""
    if ms is None:
        return None
    t = time.gmtime(ms // 1000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{ms % 1000:03d}Z"
    )


def call_summary(call: CallLike) -> dict[str, Any]:
    return {
        "id": call.id,
        "appointmentId": call.appointment_id,
        "roomName": call.room_name,
        "status": call.status,
    }


def call_full(call: CallLike) -> dict[str, Any]:
    return {
        **call_summary(call),
        "startedAt": iso(call.started_at),
        "endedAt": iso(call.ended_at),
        "duration": call.duration,
        "doctorJoinedAt": iso(call.doctor_joined_at),
        "patientJoinedAt": iso(call.patient_joined_at),
        "doctorWaitSeconds": call.doctor_wait,
        "patientWaitSeconds": call.patient_wait,
        "recordings": [
            {"startedAt": iso(r["started_at"]), "endedAt": iso(r["ended_at"]), "mode": r["mode"]}
            for r in json.loads(call.recordings or "[]")
        ],
        "createdAt": iso(call.created_at),
        "updatedAt": iso(call.updated_at),
    }


def appointment(record: AppointmentRecord | Appointment) -> dict[str, Any]:
    return {
        "id": record.id,
        "appointmentDate": record.appointment_date,
        "startTime": record.start_time,
        "endTime": record.end_time,
        "timezone": record.timezone,
        "status": record.status,
    }


def user(record: UserRecord | User | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "uid": record.uid,
        "firstName": record.first_name,
        "lastName": record.last_name,
        "email": record.email,
        "profileImageUrl": record.profile_image_url,
    }


def user_admin(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "uid": record["uid"],
        "firstName": record["first_name"],
        "lastName": record["last_name"],
        "email": record["email"],
        "profileImageUrl": record["profile_image_url"],
        "isActive": record["is_active"],
    }


def appointment_admin(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record["id"],
        "doctorUid": record["doctor_uid"],
        "patientUid": record["patient_uid"],
        "appointmentDate": record["appointment_date"],
        "startTime": record["start_time"],
        "endTime": record["end_time"],
        "timezone": record["timezone"],
        "status": record["status"],
    }


def token_grant(message: str, grant: TokenGrant) -> dict[str, Any]:
    return {
        "message": message,
        "videoCall": call_summary(grant.call),
        "jitsiToken": grant.token.token,
        "meetingLink": grant.link,
        # What `new JitsiMeetExternalAPI(domain, ...)` needs; frontends must not parse the link.
        "domain": grant.domain,
        "userRole": grant.role.value,
        "isModerator": grant.role.value == "doctor",
        "expiresIn": describe_lifetime(grant.token.lifetime),
        "expiresAt": iso(grant.token.expires_at * 1000),
    }


def presence(view: CallView) -> dict[str, Any]:
    return presence_of(view.call, view.sessions)


def lobby_of(call: CallLike) -> list[dict[str, Any]]:
    """Each knock in Jitsi's lobby: who, when, how it ended (admitted, denied, left...)."""
    return [
        {
            "role": v["role"],
            "joinedAt": iso(v["joined_at"]),
            "leftAt": iso(v["left_at"]),
            "reason": v["reason"],
            "repaired": v["repaired"],
        }
        for v in json.loads(call.lobby_visits or "[]")
    ]


def presence_of(call: CallLike, sessions: Sequence[SessionLike]) -> dict[str, Any]:
    """What Prosody saw: each role's time in the room and every occupant session."""
    return {
        "trackedByServer": bool(call.tracked_by_server),
        "doctorPresence": call.doctor_presence,
        "patientPresence": call.patient_presence,
        "missing": call.missing,
        "durationUncertain": bool(call.duration_uncertain),
        "waiting": (
            {"role": call.waiting_role, "since": iso(call.waiting_since)}
            if call.waiting_role is not None
            else None
        ),
        "lobby": lobby_of(call),
        "sessions": [
            {
                "role": s.role,
                "joinedAt": iso(s.joined_at),
                "leftAt": iso(s.left_at),
                "endReason": s.end_reason,
                "repaired": bool(s.repaired),
                "leftAtLatest": iso(s.left_at_latest),
            }
            for s in sessions
            if s.counted and s.joined_at is not None
        ],
    }


def call_details(view: CallView) -> dict[str, Any]:
    return {
        "appointment": appointment(view.appointment),
        "videoCall": call_full(view.call),
        "doctor": user(view.doctor),
        "patient": user(view.patient),
        # Which receiver Prosody's events came through: "v1" (signed), "event_sync", None.
        "presence": {**presence(view), "source": view.source},
    }


def call_list_item(view: CallView) -> dict[str, Any]:
    return {
        **call_full(view.call),
        "appointment": {
            **appointment(view.appointment),
            "doctor": user(view.doctor),
            "patient": user(view.patient),
        },
    }


def prosody_host(row: HostRecord, silent: bool) -> dict[str, Any]:
    return {
        "host": row.host,
        "bootId": row.boot_id,
        "lastHeardAt": iso(row.last_heard),
        "snapshotInterval": row.interval_s,
        "silent": silent,
    }


def stats(result: Stats) -> dict[str, Any]:
    return {
        "totalCalls": result.total_calls,
        "totalDuration": result.total_duration,
        "avgDuration": round(result.avg_duration, 1) if result.avg_duration is not None else None,
        "avgPatientWait": (
            round(result.avg_patient_wait, 1) if result.avg_patient_wait is not None else None
        ),
        "byStatus": result.by_status,
    }
