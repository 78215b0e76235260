"""Server-side truth: received Prosody events, snapshot listings, occupant sessions.

Adds to video_calls the fields derived from presence (who never came, each role's presence,
open sessions) and whether the call is tracked by Prosody's events at all.
"""

import peewee


def up(migrator, db):  # type: ignore[no-untyped-def]
    class Base(peewee.Model):
        class Meta:
            database = db
            legacy_table_names = False

    class ProsodyEvent(Base):
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

    class SnapshotRoom(Base):
        id = peewee.BigAutoField()
        event_id = peewee.CharField(max_length=128)
        occurred_at = peewee.BigIntegerField()
        room_name = peewee.CharField(max_length=255)
        meeting_id = peewee.CharField(max_length=255, null=True)
        occupants = peewee.TextField()

        class Meta:
            table_name = "snapshot_rooms"
            indexes = ((("room_name", "occurred_at"), False),)

    class OccupantSession(Base):
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

        class Meta:
            table_name = "occupant_sessions"
            indexes = ((("call_id", "session"), True),)

    db.create_tables([ProsodyEvent, SnapshotRoom, OccupantSession])
    migrator.migrate(
        migrator.add_column("video_calls", "tracked_by_server", peewee.BooleanField(default=False)),
        migrator.add_column("video_calls", "doctor_presence", peewee.IntegerField(null=True)),
        migrator.add_column("video_calls", "patient_presence", peewee.IntegerField(null=True)),
        migrator.add_column("video_calls", "missing", peewee.CharField(max_length=16, null=True)),
        migrator.add_column("video_calls", "open_sessions", peewee.IntegerField(default=0)),
    )
