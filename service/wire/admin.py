"""The admin API's answers: saved users and appointments, Prosody hosts, webhook messages."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta

from service.store import models
from service.store.outbox import PENDING, STATUSES
from service.store.rows import HostRecord, MessageRecord
from service.webhooks.messages import ALL_TYPES
from service.wire.base import (
    AppointmentStatusValue,
    Clock,
    Count,
    Date,
    Iso,
    Shape,
    const,
    iso,
    one_of,
)

NULL_UNTIL = "; null until it happens"


class User(Shape):
    uid: str
    first_name: str
    last_name: str
    email: str | None
    profile_image_url: str | None
    is_active: bool


class UserSaved(Shape):
    message: Annotated[str, const("User saved")]
    user: User


class AppointmentRecord(Shape):
    id: str
    doctor_uid: str
    patient_uid: str
    appointment_date: Date
    start_time: Clock
    end_time: Clock
    timezone: str
    status: AppointmentStatusValue


class AppointmentSaved(Shape):
    message: Annotated[str, const("Appointment saved")]
    appointment: AppointmentRecord


def user_saved(record: dict[str, Any]) -> UserSaved:
    return UserSaved(
        message="User saved",
        user=User(
            uid=record["uid"],
            first_name=record["first_name"],
            last_name=record["last_name"],
            email=record["email"],
            profile_image_url=record["profile_image_url"],
            is_active=record["is_active"],
        ),
    )


def appointment_saved(record: dict[str, Any]) -> AppointmentSaved:
    return AppointmentSaved(
        message="Appointment saved",
        appointment=AppointmentRecord(
            id=record["id"],
            doctor_uid=record["doctor_uid"],
            patient_uid=record["patient_uid"],
            appointment_date=record["appointment_date"],
            start_time=record["start_time"],
            end_time=record["end_time"],
            timezone=record["timezone"],
            status=record["status"],
        ),
    )


# --- Prosody hosts -------------------------------------------------------------------------


class ProsodyHost(Shape):
    host: Annotated[str, Meta(description="The MUC component's domain")]
    boot_id: Annotated[str | None, Meta(description="Its current boot")]
    last_heard_at: Annotated[Iso, Meta(description="Newest event or snapshot")]
    snapshot_interval: Annotated[
        Annotated[int, Meta(ge=1)] | None,
        Meta(description="Seconds, as its current boot announced (null: none)"),
    ]
    silent: Annotated[
        bool,
        Meta(
            description="Unheard for three snapshot intervals: its open sessions are closed "
            "as host_silent"
        ),
    ]


class ProsodyHostList(Shape):
    message: Annotated[str, const("Prosody hosts retrieved successfully")]
    count: Count
    hosts: list[ProsodyHost]


def prosody_hosts(found: list[tuple[HostRecord, bool]]) -> ProsodyHostList:
    hosts = [
        ProsodyHost(
            host=row.host,
            boot_id=row.boot_id,
            last_heard_at=iso(row.last_heard),
            snapshot_interval=row.interval_s,
            silent=silent,
        )
        for row, silent in found
    ]
    return ProsodyHostList(
        message="Prosody hosts retrieved successfully", count=len(hosts), hosts=hosts
    )


# --- webhook messages ----------------------------------------------------------------------


class WebhookMessage(Shape):
    id: Annotated[str, Meta(description="The message's `webhook-id`, the same on every retry")]
    type: Annotated[str, one_of(list(ALL_TYPES))]
    video_call_id: str | None
    appointment_id: str | None
    sequence: Count
    status: Annotated[str, one_of(list(STATUSES))]
    attempts: Count
    last_http_status: Annotated[
        int | None,
        Meta(
            description="The receiver's answer to the last attempt; null if none came "
            "(timeout, connection error) or no attempt was made"
        ),
    ]
    last_error: Annotated[str | None, Meta(description="timeout, ConnectError…")]
    next_attempt_at: Annotated[
        Iso | None, Meta(description="When a pending message is attempted next" + NULL_UNTIL)
    ]
    created_at: Annotated[Iso, Meta(description="When the change it tells happened")]
    delivered_at: Annotated[
        Iso | None, Meta(description="When the receiver answered 2xx" + NULL_UNTIL)
    ]


class WebhookMessageList(Shape):
    message: Annotated[str, const("Webhook messages retrieved successfully")]
    count: Count
    messages: list[WebhookMessage]
    next_cursor: str | None


class WebhookMessageQueued(Shape):
    message: Annotated[str, const("Webhook message queued")]
    webhook_message: WebhookMessage


def message_summary(row: MessageRecord | models.WebhookMessage) -> WebhookMessage:
    return WebhookMessage(
        id=row.id,
        type=row.type,
        video_call_id=row.call_id,
        appointment_id=row.appointment_id,
        sequence=row.sequence,
        status=row.status,
        attempts=row.attempts,
        last_http_status=row.last_status,
        last_error=row.last_error,
        next_attempt_at=iso(row.next_attempt_at) if row.status == PENDING else None,
        created_at=iso(row.created_at),
        delivered_at=iso(row.delivered_at),
    )
