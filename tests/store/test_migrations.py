"""Migrations that change stored rows: each run from the schema before it, on SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import peewee
import pytest
from playhouse.migrations import Runner

from service.store import db, event_log, uow
from service.store.migrate import MIGRATIONS_DIR
from service.store.models import SnapshotRoom, VideoCall


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


def test_migration_0010_watches_calls_with_someone_present_on_every_host(
    tmp_path: Path,
) -> None:
    """Before it, a snapshot was applied to every call with someone present; after it, to the
    calls watched on its host. Those calls are marked as watched on every host, so none is
    missed until its next derivation names its host."""
    database = db.make_database(f"sqlite:///{tmp_path / 'old.db'}", 2)
    db.bind(database)
    runner = Runner(database, str(MIGRATIONS_DIR), table_name="schema_migrations")

    def call(call_id: str, tracked: bool, open_sessions: int) -> dict[str, Any]:
        return {
            "id": call_id,
            "appointment_id": f"a-{call_id}",
            "room_name": f"appointment_{call_id}",
            "doctor_uid": "doc",
            "patient_uid": "pat",
            "status": "IN_PROGRESS",
            "created_at": 1,
            "updated_at": 1,
            "tracked_by_server": tracked,
            "open_sessions": open_sessions,
        }

    def migrate_and_read() -> tuple[dict[str, str | None], list[str]]:
        runner.up(target="0009_derivation_states")
        for row in (call("open", True, 2), call("empty", True, 0), call("client", False, 0)):
            VideoCall.insert(row).execute()
        runner.up()
        stored = {row.id: row.watched_hosts for row in VideoCall.select()}
        return stored, event_log.calls_watched_on("muc.any.test")

    try:
        assert uow.run(migrate_and_read) == (
            {"open": "*", "empty": None, "client": None},
            ["open"],
        )
    finally:
        database.close_all()  # type: ignore[attr-defined]
