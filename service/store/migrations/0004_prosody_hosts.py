"""Crashed and silent Prosody hosts: what the service last heard from each host, and how
sure each call's record is (a repaired session's latest possible end, an uncertain duration).
"""

import peewee


def up(migrator, db):  # type: ignore[no-untyped-def]
    class Base(peewee.Model):
        class Meta:
            database = db
            legacy_table_names = False

    class ProsodyHost(Base):
        host = peewee.CharField(max_length=255, primary_key=True)
        boot_id = peewee.CharField(max_length=128, null=True)
        last_heard = peewee.BigIntegerField()
        interval_s = peewee.IntegerField(null=True)
        silent = peewee.BooleanField(default=False)
        updated_at = peewee.BigIntegerField()

        class Meta:
            table_name = "prosody_hosts"

    db.create_tables([ProsodyHost])
    migrator.migrate(
        migrator.add_column(
            "occupant_sessions", "left_at_latest", peewee.BigIntegerField(null=True)
        ),
        migrator.add_column(
            "video_calls", "duration_uncertain", peewee.BooleanField(default=False)
        ),
    )
