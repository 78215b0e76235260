"""The sweeper's last run, so operators (the console's health view) can see it is alive."""

import peewee


def up(migrator, db):  # type: ignore[no-untyped-def]
    class SweeperRun(peewee.Model):
        name = peewee.CharField(max_length=32, primary_key=True)
        ran_at = peewee.BigIntegerField()
        derived = peewee.IntegerField(default=0)
        no_shows = peewee.IntegerField(default=0)

        class Meta:
            database = db
            table_name = "sweeper_runs"

    db.create_tables([SweeperRun])
