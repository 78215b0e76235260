"""The waiting room: who is waiting for whom since when, and how long each party waited."""

import peewee


def up(migrator, db):  # type: ignore[no-untyped-def]
    migrator.migrate(
        migrator.add_column(
            "video_calls", "waiting_role", peewee.CharField(max_length=16, null=True)
        ),
        migrator.add_column("video_calls", "waiting_since", peewee.BigIntegerField(null=True)),
        migrator.add_column("video_calls", "doctor_wait", peewee.IntegerField(null=True)),
        migrator.add_column("video_calls", "patient_wait", peewee.IntegerField(null=True)),
    )
