"""A call settled while a Prosody host was behind is provisional (issue 30): the decision
moment is kept in video_calls.provisional_since until every host has been heard past it."""

import peewee


def up(migrator, db):  # type: ignore[no-untyped-def]
    migrator.migrate(
        migrator.add_column("video_calls", "provisional_since", peewee.BigIntegerField(null=True)),
        migrator.add_index("video_calls", ("provisional_since",), False),
    )
