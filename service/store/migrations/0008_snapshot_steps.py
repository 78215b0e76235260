"""Snapshots stored in steps: one listing per snapshot and room (a unique index), so a
repeated step inserts nothing twice. A snapshot that listed a room twice kept its last
listing when read; the same one is kept here."""


def up(migrator, db):  # type: ignore[no-untyped-def]
    db.execute_sql(
        "DELETE FROM snapshot_rooms WHERE id NOT IN "
        "(SELECT MAX(id) FROM snapshot_rooms GROUP BY event_id, room_name)"
    )
    migrator.migrate(
        migrator.add_index("snapshot_rooms", ("event_id", "room_name"), unique=True),
    )
