"""A snapshot or restart is applied to the calls watched on its host (video_calls.watched_host)
instead of every call with someone present. Calls open before this migration are watched on
every host ("*") until their next derivation says which one."""

import peewee


def up(migrator, db):  # type: ignore[no-untyped-def]
    migrator.migrate(
        migrator.add_column(
            "video_calls", "watched_host", peewee.CharField(max_length=255, null=True)
        ),
        migrator.add_index("video_calls", ("watched_host",), unique=False),
    )
    db.execute_sql(
        "UPDATE video_calls SET watched_host = '*' WHERE tracked_by_server AND open_sessions > 0"
    )
