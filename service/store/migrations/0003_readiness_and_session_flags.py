"""The readiness probe's row, and session flags that an old insert stored wrongly.

1. `readiness_probe`: one row that /readyz updates, because readiness means the database
   takes a committed write.
2. `occupant_sessions.repaired` and `.counted` were stored as true whatever the derivation
   said (the compiled insert baked in its sample values). What SQL can tell for certain is
   put right here: a session that ended by a real `left` reason, or has not ended, was not
   repaired; a session without a join is not counted. The rest (a session after a COMPLETED
   call's cutoff, a `room_destroyed` that may or may not be a repair) is rewritten by the
   next derivation of its call; the sweeper re-derives every call with open sessions.
"""

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
    mark = db.param  # "?" on SQLite, "%s" on PostgreSQL
    db.execute_sql(
        f"UPDATE occupant_sessions SET repaired = {mark}"  # noqa: S608 - no input here
        " WHERE end_reason IS NULL OR end_reason IN ('left', 'kicked', 'unknown')",
        (False,),
    )
    db.execute_sql(
        f"UPDATE occupant_sessions SET counted = {mark} WHERE joined_at IS NULL",  # noqa: S608
        (False,),
    )
