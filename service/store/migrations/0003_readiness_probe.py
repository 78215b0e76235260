"""One row that /readyz updates: readiness means the database takes a committed write."""

import peewee


def up(migrator, db):  # type: ignore[no-untyped-def]
    class ReadinessProbe(peewee.Model):
        id = peewee.IntegerField(primary_key=True)
        checked_at = peewee.BigIntegerField(default=0)

        class Meta:
            database = db
            table_name = "readiness_probe"

    db.create_tables([ReadinessProbe])
    ReadinessProbe.insert(id=1, checked_at=0).on_conflict_ignore().execute()
