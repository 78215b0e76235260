"""Migrations that change stored rows: each run from the schema before it, on SQLite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import peewee
import pytest
from playhouse.migrations import Runner

from harness.clock import local_day
from service.domain import audit_chain
from service.store import audit_log, db, event_log, uow
from service.store.migrate import MIGRATIONS_DIR
from service.store.models import Appointment, AuditEvent, SnapshotRoom, VideoCall
from tests.clock import FrozenClock
from tests.conftest import require


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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[peewee.Database]:
    """A database with no table yet, bound to the models: a file, or a private schema."""
    if request.param == "sqlite":
        database = db.make_database(f"sqlite:///{tmp_path / 'old.db'}", 2)
        db.bind(database)
        yield database
        database.close_all()  # type: ignore[attr-defined]
        return
    url = os.environ.get("TEST_DATABASE_URL", "")
    require(bool(url), "TEST_DATABASE_URL is not set (PostgreSQL tests)")
    schema = f"vc_migration_{uuid.uuid4().hex[:8]}"
    admin = db.make_database(url, 2)
    admin.connect()
    admin.execute_sql(f'CREATE SCHEMA "{schema}"')  # type: ignore[no-untyped-call]
    admin.close()
    sep = "&" if "?" in url else "?"
    database = db.make_database(f"{url}{sep}options={quote(f'-csearch_path={schema}')}", 2)
    db.bind(database)
    try:
        yield database
    finally:
        database.close_all()  # type: ignore[attr-defined]
        admin.connect()
        admin.execute_sql(f'DROP SCHEMA "{schema}" CASCADE')  # type: ignore[no-untyped-call]
        admin.close()


def test_migration_0011_gives_each_room_one_appointment(
    empty_database: peewee.Database, clock: FrozenClock
) -> None:
    """Ids differing only in case shared a Jitsi room. Each room keeps one owner: the one whose
    call holds it, else the earliest stored; the others keep no room key (initiate and their
    next upsert are refused with room_conflict), and from then on the unique index refuses a
    second appointment for a room."""
    runner = Runner(empty_database, str(MIGRATIONS_DIR), table_name="schema_migrations")

    def appointment(appointment_id: str, created_at: int) -> dict[str, Any]:
        return {
            "id": appointment_id,
            "doctor_uid": "doc",
            "patient_uid": "pat",
            # The day and end only fill their columns; taken from the frozen clock all the same.
            "appointment_date": local_day(clock.ms, "UTC"),
            "start_time": "10:00",
            "end_time": "10:30",
            "status": "CONFIRMED",
            "ends_at": clock.ms,
            "created_at": created_at,
            "updated_at": created_at,
        }

    def migrate_and_read() -> dict[str, str | None]:
        runner.up(target="0010_watched_hosts")
        for row in (
            appointment("Alone", 5),
            appointment("First", 1),
            appointment("FIRST", 2),
            appointment("first", 3),
            appointment("Called", 1),
            appointment("called", 2),
        ):
            Appointment.insert(row).execute()
        VideoCall.insert(
            id="vc_1",
            appointment_id="called",
            room_name="appointment_called",
            doctor_uid="doc",
            patient_uid="pat",
            status="SCHEDULED",
            created_at=3,
            updated_at=3,
        ).execute()
        runner.up()
        with pytest.raises(peewee.IntegrityError), uow.write():
            Appointment.update(room_key="appointment_first").where(
                Appointment.id == "FIRST"
            ).execute()
        return {row.id: row.room_key for row in Appointment.select()}

    assert uow.run(migrate_and_read) == {
        "Alone": "appointment_alone",
        "First": "appointment_first",
        "FIRST": None,
        "first": None,
        "Called": None,
        "called": "appointment_called",
    }


def test_migration_0013_chains_the_entries_stored_before_it(
    empty_database: peewee.Database,
) -> None:
    """Entries written before the chain existed are chained in the order they were written,
    the trail verifies, new entries continue it, and from then on the database refuses to
    change one."""
    runner = Runner(empty_database, str(MIGRATIONS_DIR), table_name="schema_migrations")

    def migrate_and_verify() -> tuple[list[tuple[int | None, str]], bool, str | None]:
        runner.up(target="0011_room_keys")
        for i, actor in enumerate(("first", "second", "third")):
            # Times out of order: the chain follows the order of writing, not `at`.
            AuditEvent.insert(at=100 - i, actor=actor, action="call.created").execute()
        runner.up()
        with uow.write():
            audit_log.audit("fourth", "call.created", 1)
        walk = audit_chain.Walk()
        walk.feed(audit_log.chain())
        with pytest.raises(peewee.DatabaseError, match="append-only"), uow.write():
            AuditEvent.update(actor="someone-else").execute()
        stored = [(row.seq, row.actor) for row in AuditEvent.select().order_by(AuditEvent.id)]
        return stored, walk.count == 4, walk.failure.reason if walk.failure else None

    stored, verified, failure = uow.run(migrate_and_verify)
    assert stored == [(1, "first"), (2, "second"), (3, "third"), (4, "fourth")]
    assert (verified, failure) == (True, None)
