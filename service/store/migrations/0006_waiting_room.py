"""The waiting room: who is waiting for whom since when, how long each party waited, the
lobby visits and recordings of a call, and lobby listings in snapshots."""

import peewee


def up(migrator, db):  # type: ignore[no-untyped-def]
    migrator.migrate(
        migrator.add_column(
            "video_calls", "waiting_role", peewee.CharField(max_length=16, null=True)
        ),
        migrator.add_column("video_calls", "waiting_since", peewee.BigIntegerField(null=True)),
        migrator.add_column("video_calls", "doctor_wait", peewee.IntegerField(null=True)),
        migrator.add_column("video_calls", "patient_wait", peewee.IntegerField(null=True)),
        migrator.add_column("video_calls", "lobby_visits", peewee.TextField(default="[]")),
        migrator.add_column("video_calls", "recordings", peewee.TextField(default="[]")),
        migrator.add_column("snapshot_rooms", "lobby", peewee.TextField(null=True)),
    )
