"""The database refuses to change or remove audit entries and checkpoints (triggers), and the
one controlled way around that: `lifted()`, for purge, erasure and the tests' reset.

On SQLite the triggers are dropped and created again inside the caller's transaction (DDL is
transactional there, and the writer lock keeps every other writer out meanwhile). On
PostgreSQL they are disabled for the transaction with ALTER TABLE, which only the tables'
owner may run: with the role setup in docs/operator-guide.md the service's own role cannot,
so the guard holds against the service's credentials and only the owner's purge lifts it.
Either way the guard is back when the transaction ends, committed or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import peewee

from service.store import uow
from service.store.db import current, is_postgres

TABLES = ("audit_events", "audit_checkpoints")
MESSAGE = "the audit trail is append-only"


def _sqlite_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        for op in ("UPDATE", "DELETE")
    ]


_POSTGRES_FUNCTION = (
    "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{MESSAGE} (%% refused)', TG_OP; END $$"
)


def _postgres_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
    ]


def install(database: peewee.Database) -> None:
    """Create the triggers (a migration runs this; unqualified names land in the first
    schema of the search path, the service's own)."""
    if is_postgres(database):
        database.execute_sql(_POSTGRES_FUNCTION)
        for table in TABLES:
            for sql in _postgres_triggers(table):
                database.execute_sql(sql)
        return
    for table in TABLES:
        for sql in _sqlite_triggers(table):
            database.execute_sql(sql)


@contextmanager
def lifted() -> Iterator[None]:
    """A write transaction in which audit rows may be updated and deleted."""
    with uow.write():
        database = current()
        if is_postgres(database):
            for table in TABLES:
                database.execute_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            yield
            for table in TABLES:
                database.execute_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            return
        for table in TABLES:
            for op in ("update", "delete"):
                database.execute_sql(f"DROP TRIGGER {table}_no_{op}")
        yield
        for table in TABLES:
            for sql in _sqlite_triggers(table):
                database.execute_sql(sql)
