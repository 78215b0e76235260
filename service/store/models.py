"""Tables, as peewee models. Every time is an integer of milliseconds since the Unix epoch (UTC).

Milliseconds everywhere keep SQLite and PostgreSQL identical (no time-zone or precision
surprises) and match the event contract's `occurred_at`.
"""

from __future__ import annotations

import peewee

from service.store.db import database_proxy


class BaseModel(peewee.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class User(BaseModel):
    uid = peewee.CharField(max_length=128, primary_key=True)
    first_name = peewee.CharField(max_length=200, default="")
    last_name = peewee.CharField(max_length=200, default="")
    email = peewee.CharField(max_length=320, null=True)
    profile_image_url = peewee.CharField(max_length=2048, null=True)
    is_active = peewee.BooleanField(default=True)
    created_at = peewee.BigIntegerField()
    updated_at = peewee.BigIntegerField()

    class Meta:
        table_name = "users"


class Appointment(BaseModel):
    id = peewee.CharField(max_length=128, primary_key=True)
    doctor_uid = peewee.CharField(max_length=128, index=True)
    patient_uid = peewee.CharField(max_length=128, index=True)
    appointment_date = peewee.CharField(max_length=10)
    start_time = peewee.CharField(max_length=5)
    end_time = peewee.CharField(max_length=5)
    timezone = peewee.CharField(max_length=64, default="UTC")
    status = peewee.CharField(max_length=16)
    # Derived from date, end time and time zone at upsert: the sweeper's NO_SHOW clock.
    ends_at = peewee.BigIntegerField(index=True)
    created_at = peewee.BigIntegerField()
    updated_at = peewee.BigIntegerField()

    class Meta:
        table_name = "appointments"


class VideoCall(BaseModel):
    id = peewee.CharField(max_length=40, primary_key=True)
    appointment_id = peewee.CharField(max_length=128, unique=True)
    room_name = peewee.CharField(max_length=160, unique=True)
    # Copied from the appointment so a participant's list is one index range scan.
    doctor_uid = peewee.CharField(max_length=128)
    patient_uid = peewee.CharField(max_length=128)
    status = peewee.CharField(max_length=16)
    started_at = peewee.BigIntegerField(null=True)
    ended_at = peewee.BigIntegerField(null=True)
    duration = peewee.IntegerField(null=True)
    doctor_joined_at = peewee.BigIntegerField(null=True)
    patient_joined_at = peewee.BigIntegerField(null=True)
    created_at = peewee.BigIntegerField()
    updated_at = peewee.BigIntegerField()

    class Meta:
        table_name = "video_calls"
        indexes = (
            (("doctor_uid", "created_at", "id"), False),
            (("patient_uid", "created_at", "id"), False),
            (("status", "created_at", "id"), False),
        )


class AuditEvent(BaseModel):
    """Append-only: what happened, who did it, to which call. Never tokens, never PHI."""

    id = peewee.BigAutoField()
    at = peewee.BigIntegerField()
    actor = peewee.CharField(max_length=128)
    action = peewee.CharField(max_length=64)
    call_id = peewee.CharField(max_length=40, null=True, index=True)
    appointment_id = peewee.CharField(max_length=128, null=True)
    detail = peewee.TextField(default="{}")

    class Meta:
        table_name = "audit_events"
