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
    # The Jitsi room's name (domain.model.room_name_for, lower-cased), unique: ids differing
    # only in letter case cannot both be stored. NULL only for such an id stored before
    # migration 0011, which keeps no room until the clinic renames it.
    room_key = peewee.CharField(max_length=160, null=True, unique=True)

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
    # Set once the first Prosody event for the room arrives: from then on the server's view
    # of joins, start, end and duration wins over client reports.
    tracked_by_server = peewee.BooleanField(default=False)
    doctor_presence = peewee.IntegerField(null=True)
    patient_presence = peewee.IntegerField(null=True)
    missing = peewee.CharField(max_length=16, null=True)
    open_sessions = peewee.IntegerField(default=0)
    # A repaired session's unknown end bounds the counted overlap (docs/events.md).
    duration_uncertain = peewee.BooleanField(default=False)
    # The waiting room (docs/events.md): who waits for the other since when, before the start;
    # and each party's wait in seconds, once the call started or became NO_SHOW.
    waiting_role = peewee.CharField(max_length=16, null=True)
    waiting_since = peewee.BigIntegerField(null=True)
    doctor_wait = peewee.IntegerField(null=True)
    patient_wait = peewee.IntegerField(null=True)
    # JSON lists, derived: lobby visits [{role, joined_at, left_at, reason}] and recordings
    # [{session, started_at, ended_at, mode}] (docs/events.md).
    lobby_visits = peewee.TextField(default="[]")
    recordings = peewee.TextField(default="[]")
    # The Prosody hosts whose snapshots and restarts are applied to this call although they
    # do not list its room, derived (domain/record.py), space-separated (NULL: none); the
    # look-up by host is call_hosts.
    watched_hosts = peewee.TextField(null=True)
    # A settled status decided while a Prosody host had not yet been heard past the decision
    # (its evidence may still be on its way): the decision moment (rules.decided_at); NULL
    # once every host has been heard past it, after the correction horizon, or while open.
    provisional_since = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "video_calls"
        indexes = (
            (("provisional_since",), False),
            (("doctor_uid", "created_at", "id"), False),
            (("patient_uid", "created_at", "id"), False),
            (("status", "created_at", "id"), False),
        )


class CallHost(BaseModel):
    """One of a call's watched hosts (video_calls.watched_hosts), to find a host's calls."""

    host = peewee.CharField(max_length=255)
    call_id = peewee.CharField(max_length=40)

    class Meta:
        table_name = "call_hosts"
        primary_key = peewee.CompositeKey("host", "call_id")
        indexes = ((("call_id",), False),)


class AuditEvent(BaseModel):
    """Append-only: what happened, who did it, to which call. Never tokens, never PHI."""

    id = peewee.BigAutoField()
    at = peewee.BigIntegerField()
    actor = peewee.CharField(max_length=128)
    action = peewee.CharField(max_length=64)
    call_id = peewee.CharField(max_length=40, null=True, index=True)
    appointment_id = peewee.CharField(max_length=128, null=True)
    detail = peewee.TextField(default="{}")
    # Where the request came from (the client's address), for what people do over HTTP.
    address = peewee.CharField(max_length=64, null=True)
    # The hash chain (service/domain/audit_chain.py): the position, a random nonce, the hash
    # of the content, and the hashes of the entry before and of this one. Null only in a row
    # written around the service, which `videocalls audit verify` then names.
    seq = peewee.BigIntegerField(null=True, unique=True)
    nonce = peewee.CharField(max_length=32, null=True)
    content_hash = peewee.CharField(max_length=64, null=True)
    prev_hash = peewee.CharField(max_length=64, null=True)
    hash = peewee.CharField(max_length=64, null=True)

    class Meta:
        table_name = "audit_events"


class AuditCheckpoint(BaseModel):
    """A signed statement that the trail had `entries` entries ending in `head_hash` at `at`.

    Kept here for the operators' list; its proof is the copy kept outside (log, webhook).
    """

    id = peewee.BigAutoField()
    at = peewee.BigIntegerField()
    entries = peewee.BigIntegerField()
    head_hash = peewee.CharField(max_length=64)
    public_key = peewee.CharField(max_length=64)
    signature = peewee.CharField(max_length=128)

    class Meta:
        table_name = "audit_checkpoints"


class ProsodyEvent(BaseModel):
    """A received event, stored once under its id (the deduplication key).

    `data` is the parsed event in the service's own JSON form (the same for both receivers),
    so the record can be derived again without the original request.
    """

    id = peewee.CharField(max_length=128, primary_key=True)
    type = peewee.CharField(max_length=32)
    source = peewee.CharField(max_length=16)
    host = peewee.CharField(max_length=255)
    boot_id = peewee.CharField(max_length=128, null=True)
    seq = peewee.BigIntegerField(null=True)
    occurred_at = peewee.BigIntegerField()
    room_name = peewee.CharField(max_length=255, null=True)
    meeting_id = peewee.CharField(max_length=255, null=True)
    data = peewee.TextField()
    received_at = peewee.BigIntegerField()

    class Meta:
        table_name = "prosody_events"
        indexes = (
            (("room_name", "occurred_at"), False),
            (("type", "occurred_at"), False),
            (("boot_id", "seq"), False),
        )


class SnapshotRoom(BaseModel):
    """One room listed in a rooms.snapshot, so a call reads only its own room's listings."""

    id = peewee.BigAutoField()
    event_id = peewee.CharField(max_length=128)
    occurred_at = peewee.BigIntegerField()
    room_name = peewee.CharField(max_length=255)
    meeting_id = peewee.CharField(max_length=255, null=True)
    occupants = peewee.TextField()
    # Those knocking in the room's lobby (JSON like `occupants`); None: none listed.
    lobby = peewee.TextField(null=True)

    class Meta:
        table_name = "snapshot_rooms"
        # Unique per snapshot and room: a big snapshot's listings are stored in steps that a
        # retry (or a second replica) may repeat, so each insert ignores what is already there.
        indexes = ((("room_name", "occurred_at"), False), (("event_id", "room_name"), True))


class OccupantSession(BaseModel):
    """The derived presence timeline of a call, rewritten whenever the call is derived."""

    id = peewee.BigAutoField()
    call_id = peewee.CharField(max_length=40)
    session = peewee.CharField(max_length=255)
    user_id = peewee.CharField(max_length=255, null=True)
    role = peewee.CharField(max_length=16)
    joined_at = peewee.BigIntegerField(null=True)
    left_at = peewee.BigIntegerField(null=True)
    end_reason = peewee.CharField(max_length=32, null=True)
    repaired = peewee.BooleanField(default=False)
    counted = peewee.BooleanField(default=True)
    # A repaired session's earliest later moment known gone (None: unknown, or not repaired).
    left_at_latest = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "occupant_sessions"
        indexes = ((("call_id", "session"), True),)


class ProsodyHost(BaseModel):
    """What the service last heard from one Prosody host (the MUC component's domain).

    Kept for operators (GET /api/admin/prosody-hosts) and to log and audit a host going silent
    and coming back once each; call records never read it (they derive from the events).
    `silent` is the last state logged; whether a host is silent *now* is computed from
    `last_heard` and `interval_s` (sessions.silent_from).
    """

    host = peewee.CharField(max_length=255, primary_key=True)
    boot_id = peewee.CharField(max_length=128, null=True)
    last_heard = peewee.BigIntegerField()
    # The current boot's announced snapshot interval; None: none announced (no silence rule).
    interval_s = peewee.IntegerField(null=True)
    silent = peewee.BooleanField(default=False)
    updated_at = peewee.BigIntegerField()

    class Meta:
        table_name = "prosody_hosts"


class WebhookMessage(BaseModel):
    """The outbox: one message to the clinic, written in the transaction of the change it tells.

    `body` is fixed at creation, so every retry sends the same bytes under the same id.
    `next_attempt_at` is also the lease: a sender claiming a message moves it past the attempt's
    timeout, so another replica (or this one after a crash) takes it up only once that passed.
    """

    id = peewee.CharField(max_length=40, primary_key=True)
    type = peewee.CharField(max_length=32)
    call_id = peewee.CharField(max_length=40, null=True)
    appointment_id = peewee.CharField(max_length=128, null=True)
    sequence = peewee.BigIntegerField(default=0)
    body = peewee.TextField()
    status = peewee.CharField(max_length=16)
    attempts = peewee.IntegerField(default=0)
    last_status = peewee.IntegerField(null=True)
    last_error = peewee.CharField(max_length=200, null=True)
    next_attempt_at = peewee.BigIntegerField()
    lease_owner = peewee.CharField(max_length=64, null=True)
    created_at = peewee.BigIntegerField()
    updated_at = peewee.BigIntegerField()
    delivered_at = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "webhook_messages"
        indexes = (
            (("status", "next_attempt_at"), False),
            (("call_id", "sequence"), False),
            (("status", "created_at", "id"), False),
        )


class WebhookCallState(BaseModel):
    """What the clinic has been told about one call: the last sequence and the notified state."""

    call_id = peewee.CharField(max_length=40, primary_key=True)
    sequence = peewee.BigIntegerField(default=0)
    state = peewee.TextField(default="{}")

    class Meta:
        table_name = "webhook_call_state"


class SweeperRun(BaseModel):
    """One row per sweeper (today only "sweeper"): when it last ran and what it did."""

    name = peewee.CharField(max_length=32, primary_key=True)
    ran_at = peewee.BigIntegerField()
    derived = peewee.IntegerField(default=0)
    no_shows = peewee.IntegerField(default=0)

    class Meta:
        table_name = "sweeper_runs"


class DerivationState(BaseModel):
    """A call's summary for incremental derivation (service.domain.incremental), as JSON.

    Written with every derivation of the call, in its transaction; a missing or unreadable
    one only means the next event derives the call in full.
    """

    call_id = peewee.CharField(max_length=40, primary_key=True)
    state = peewee.TextField()

    class Meta:
        table_name = "derivation_states"


ALL_MODELS = (
    User,
    Appointment,
    VideoCall,
    AuditEvent,
    AuditCheckpoint,
    ProsodyEvent,
    SnapshotRoom,
    OccupantSession,
    ProsodyHost,
    WebhookMessage,
    WebhookCallState,
    SweeperRun,
    DerivationState,
    CallHost,
)
