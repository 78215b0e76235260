"""One row that /readyz updates: readiness means the database takes a committed write."""

import peewee


def up(migrator, db):  # type: ignore[no-untyped-def]
    class ReadinessProbe(peewee.Model):
        id = peewee.IntegerField(primary_key=True)
        # Counts probes: each probe must change the row, as SQLite skips writing a row
        # whose new content is identical to the old.
        writes = peewee.BigIntegerField(default=0)

        class Meta:
            database = db
            table_name = "readiness_probe"

    db.create_tables([ReadinessProbe])
    ReadinessProbe.insert(id=1, writes=0).on_conflict_ignore().execute()
