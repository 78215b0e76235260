"""The operator console's views (GET /api/admin/console/...), as the console's script reads them.

Built by service/views.py; the field descriptions here are the document's.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from service.domain.attention import Attention
from service.domain.model import Missing
from service.wire.admin import WebhookMessage
from service.wire.base import (
    PARTIES,
    ROLES,
    AppointmentStatusValue,
    CallStatusValue,
    Clock,
    Count,
    Date,
    Iso,
    SettledValue,
    Shape,
    VerificationValue,
    one_of,
)

GROUPS = [g.value for g in Attention]
Seconds = Annotated[int | None, Meta(description="Seconds in the room")]


class ConsolePerson(Shape):
    uid: str
    name: Annotated[str, Meta(description="First and last name, or the uid")]


class ConsoleCallBrief(Shape):
    id: str
    status: CallStatusValue
    started_at: Iso | None
    ended_at: Iso | None
    duration: Count | None
    tracked_by_server: bool
    verification: VerificationValue


class ConsoleDayItem(Shape):
    appointment_id: str
    appointment_status: AppointmentStatusValue
    appointment_date: Date
    start_time: Clock
    end_time: Clock
    timezone: str
    starts_at: Iso
    ends_at: Iso
    attention: Annotated[str, one_of(GROUPS, description="The group it is shown in")]
    doctor: ConsolePerson
    patient: ConsolePerson
    present: Annotated[
        list[Annotated[str, one_of(PARTIES)]], Meta(description="Who is in the room now")
    ]
    waiting_since: Annotated[
        Iso | None, Meta(description="While waiting: when the one in the room joined")
    ]
    missing: Annotated[
        Annotated[str, one_of([m.value for m in Missing])] | None,
        Meta(description="While missed: who did not come"),
    ]
    video_call: Annotated[
        ConsoleCallBrief | None, Meta(description="null until someone initiated the call")
    ]


_COUNTS: dict[str, Any] = {
    "type": "object",
    "properties": {g: {"type": "integer", "minimum": 0} for g in GROUPS},
    "required": GROUPS,
}


class ConsoleDay(Shape):
    date: Date
    now: Iso
    doctor: str | None
    doctors: Annotated[
        list[ConsolePerson],
        Meta(description="Every doctor with an appointment that day (for the filter)"),
    ]
    groups: list[Annotated[str, one_of(GROUPS)]]
    # One count per group (keys are the groups themselves).
    counts: Annotated[Any, Meta(extra_json_schema=_COUNTS)]
    appointments: list[ConsoleDayItem]


class ConsoleVideoCall(Shape):
    id: str
    appointment_id: str
    room_name: str
    status: CallStatusValue
    started_at: Iso | None
    ended_at: Iso | None
    duration: Count | None
    doctor_joined_at: Iso | None
    patient_joined_at: Iso | None
    # As in VideoCall (GET /api/video-calls/{ref}), which says more.
    doctor_wait_seconds: Count | None
    patient_wait_seconds: Count | None
    recordings: Annotated[list[Any], Meta(extra_json_schema={"items": {"type": "object"}})]
    created_at: Iso
    updated_at: Iso
    tracked_by_server: bool
    verification: VerificationValue
    settled: SettledValue
    doctor_presence: Seconds
    patient_presence: Seconds
    missing: str | None
    open_sessions: int


class ConsoleAppointment(Shape):
    id: str
    appointment_date: Date
    start_time: Clock
    end_time: Clock
    timezone: str
    status: AppointmentStatusValue
    starts_at: Iso
    ends_at: Iso


class ConsoleAxis(msgspec.Struct, kw_only=True):
    """The time axis to draw: the appointment and every session"""

    from_: Iso = msgspec.field(name="from")
    to: Iso


class ConsoleSession(Shape):
    session: str
    role: Annotated[str, one_of(ROLES)]
    user_id: str | None
    joined_at: Iso | None
    left_at: Iso | None
    end_reason: str | None
    repaired: Annotated[
        bool, Meta(description="Closed by the service (restart, snapshot, sweeper)")
    ]
    counted: bool


class ConsoleTransition(Shape):
    at: Iso
    from_: str | None = msgspec.field(name="from")
    to: str | None
    actor: str
    cause: str | None


class ConsoleAuditEntry(Shape):
    at: Iso
    actor: str
    action: str
    detail: Annotated[dict[str, Any], Meta(extra_json_schema={"type": "object"})]


class ConsoleCall(Shape):
    now: Iso
    video_call: ConsoleVideoCall
    appointment: ConsoleAppointment
    doctor: ConsolePerson
    patient: ConsolePerson
    axis: ConsoleAxis
    sessions: list[ConsoleSession]
    lobby: Annotated[
        list[Any],
        Meta(
            description="Knocks in Jitsi's lobby, as presence.lobby of the call details",
            extra_json_schema={"items": {"type": "object"}},
        ),
    ]
    transitions: list[ConsoleTransition]
    audit: list[ConsoleAuditEntry]
    webhooks: Annotated[
        list[WebhookMessage],
        Meta(description="The messages to the clinic about this call, in sequence order"),
    ]


class ConsoleDoctorTotals(Shape):
    uid: str
    name: str
    calls: Count
    completed: Count
    no_shows: Count
    minutes: Annotated[float, Meta(ge=0)]
    average_duration: Annotated[float | None, Meta(description="Seconds")]
    no_show_rate: Annotated[
        Annotated[float, Meta(ge=0, le=1)] | None,
        Meta(description="NO_SHOW / (COMPLETED + NO_SHOW)"),
    ]
    average_patient_wait: Annotated[
        float | None, Meta(description="Seconds, over COMPLETED calls: patientWaitSeconds")
    ]


class ConsoleDayMinutes(Shape):
    date: Date
    minutes: Annotated[float, Meta(ge=0)]


class ConsoleDoctors(Shape):
    from_: Date = msgspec.field(name="from")
    to: Date
    doctor: str | None
    doctors: list[ConsoleDoctorTotals]
    days: Annotated[
        list[ConsoleDayMinutes], Meta(description="Completed minutes on every day of the range")
    ]


class ConsoleProsodyHost(Shape):
    host: str
    last_event_at: Iso
    last_event_type: str
    boot_id: str | None
    last_seq: int | None
    events: Count
    seq_gaps: Count
    restarts: Count


class ConsoleRepairs(Shape):
    total: Count
    by_reason: dict[str, int]


class ConsoleSweeper(Shape):
    interval_seconds: int
    last_run_at: Iso | None
    derived: int | None
    no_shows: int | None
    overdue: bool


class ConsoleWebhooks(Shape):
    enabled: Annotated[bool, Meta(description="WEBHOOK_URL is set")]
    failed: Count
    retrying: Annotated[Count, Meta(description="Pending after at least one failed attempt")]
    failing: Annotated[
        list[WebhookMessage],
        Meta(description="The newest failed or retrying messages (at most 10)"),
    ]


class ConsoleHealth(Shape):
    now: Iso
    window_hours: int
    prosody_hosts: list[ConsoleProsodyHost]
    repairs: ConsoleRepairs
    sweeper: ConsoleSweeper
    webhooks: ConsoleWebhooks
