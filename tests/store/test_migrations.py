"""Migrations that change stored rows: each run from the schema before it, on SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import peewee
import pytest
from playhouse.migrations import Runner

from service.store import db, uow
from service.store.migrate import MIGRATIONS_DIR
from service.store.models import SnapshotRoom


def test_migration_0008_keeps_the_last_listing_of_a_room_and_makes_them_unique(
    tmp_path: Path,
) -> None:
    """A snapshot that listed a room twice was read with its last listing; the migration
    keeps that one, and from then on a repeated listing is refused by the unique index."""
    database = db.make_database(f"sqlite:///{tmp_path / 'old.db'}", 2)
    db.bind(database)
    runner = Runner(database, str(MIGRATIONS_DIR), table_name="schema_migrations")

    def listing(occupants: str) -> dict[str, Any]:
        return {
            "event_id": "evt_1",
            "occurred_at": 1_000,
            "room_name": "appointment_x",
            "occupants": occupants,
        }

    def migrate_and_read() -> list[str]:
        runner.up(target="0007_sweeper_runs")
        SnapshotRoom.insert(listing('["first"]')).execute()
        SnapshotRoom.insert(listing('["last"]')).execute()
        runner.up()
        with pytest.raises(peewee.IntegrityError), uow.write():
            SnapshotRoom.insert(listing('["again"]')).execute()
        return [row.occupants for row in SnapshotRoom.select()]

    try:
        assert uow.run(migrate_and_read) == ['["last"]']
    finally:
        database.close_all()  # type: ignore[attr-defined]
