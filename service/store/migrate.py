"""Schema migrations with peewee's own runner (playhouse.migrations), one file per change."""

from __future__ import annotations

from pathlib import Path

from playhouse.migrations import Runner

from service.store import db as store_db
from service.store import uow

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same in every replica.
MIGRATION_LOCK_KEY = 7_305_001


def migrate() -> list[str]:
    """Apply pending migrations; returns their names.

    On PostgreSQL a session advisory lock serialises replicas that start at the same time,
    so each migration runs once. SQLite has one writer at a time anyway.
    """
    database = store_db.current()

    def apply() -> list[str]:
        runner = Runner(database, str(MIGRATIONS_DIR), table_name="schema_migrations")
        if store_db.is_postgres(database):
            database.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
            try:
                return list(runner.up())
            finally:
                database.execute_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
        return list(runner.up())

    return uow.run(apply)


def pending() -> list[str]:
    database = store_db.current()

    def status() -> list[str]:
        runner = Runner(database, str(MIGRATIONS_DIR), table_name="schema_migrations")
        return [m.name for m in runner.status() if m.applied is None and m.path is not None]

    return uow.run(status)
