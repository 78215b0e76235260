"""A snapshot or restart is applied to the calls watched on its host (call_hosts) instead of
every call with someone present. Calls open before this migration are watched on every host
("*") until their next derivation names their hosts."""

import peewee


def up(migrator, db):  # type: ignore[no-untyped-def]
    class CallHost(peewee.Model):
        host = peewee.CharField(max_length=255)
        call_id = peewee.CharField(max_length=40)

        class Meta:
            database = db
            table_name = "call_hosts"
            primary_key = peewee.CompositeKey("host", "call_id")
            indexes = ((("call_id",), False),)

    migrator.migrate(
        migrator.add_column("video_calls", "watched_hosts", peewee.TextField(null=True)),
    )
    db.create_tables([CallHost])
    db.execute_sql(
        "UPDATE video_calls SET watched_hosts = '*' WHERE tracked_by_server AND open_sessions > 0"
    )
    db.execute_sql(
        "INSERT INTO call_hosts (host, call_id) SELECT '*', id FROM video_calls "
        "WHERE tracked_by_server AND open_sessions > 0"
    )
