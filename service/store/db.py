"""Database connections: pooled SQLite (default) or pooled PostgreSQL, picked by DATABASE_URL."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlparse

import peewee
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase, PooledSqliteDatabase

T = TypeVar("T")

# Proxies let the models be declared once and bound to whichever database the settings name.
database_proxy = peewee.DatabaseProxy()

# WAL lets readers run beside the single writer; busy_timeout makes a writer wait for the lock
# instead of failing at once with "database is locked".
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "busy_timeout": 10000,
    "foreign_keys": 1,
}


class DatabaseUnavailable(Exception):
    """The database cannot be reached or is overloaded; callers answer 503 and retry later."""


def make_database(url: str, pool_size: int = 20) -> peewee.Database:
    """Build a pooled database from a `sqlite:///path` or `postgresql://...` URL."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path[1:]) if parsed.path.startswith("/") else parsed.path
        if not path:
            raise ValueError("sqlite URL needs a path: sqlite:///data/videocalls.db")
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return PooledSqliteDatabase(
            path,
            pragmas=SQLITE_PRAGMAS,
            max_connections=pool_size,
            stale_timeout=300,
            # Wait for a free connection rather than failing when all are busy.
            timeout=10,
            check_same_thread=False,
        )
    if parsed.scheme in ("postgresql", "postgres"):
        params: dict[str, Any] = {k: v for k, v in parse_qsl(parsed.query)}
        return PooledPostgresqlDatabase(
            unquote(parsed.path.lstrip("/")) or "postgres",
            user=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 5432,
            max_connections=pool_size,
            stale_timeout=300,
            timeout=10,
            connect_timeout=5,
            **params,
        )
    raise ValueError(f"unsupported database URL scheme: {parsed.scheme!r}")


def is_postgres(db: peewee.Database) -> bool:
    return isinstance(db, peewee.PostgresqlDatabase)


def bind(db: peewee.Database) -> None:
    database_proxy.initialize(db)


def current() -> peewee.Database:
    db = database_proxy.obj
    if db is None:
        raise RuntimeError("database not bound: call store.db.bind() first")
    return db


# Writers of one process queue here, in order, instead of each polling SQLite's lock in the
# busy handler (which sleeps with growing back-off and makes long tails under load).
_sqlite_writer = threading.Lock()


@contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction that takes the write lock up front.

    SQLite's default deferred BEGIN upgrades to a write lock mid-transaction and fails with
    "database is locked" when two writers race; BEGIN IMMEDIATE queues them on busy_timeout
    instead (between processes), and a process-wide lock queues this process's writers.
    PostgreSQL needs nothing special: conditional updates and row locks do the rest.
    """
    db = current()
    if not isinstance(db, peewee.SqliteDatabase):
        with db.atomic():
            yield
        return
    if db.in_transaction():
        with db.atomic():
            yield
        return
    with _sqlite_writer, db.atomic("IMMEDIATE"):
        yield


def run(fn: Callable[[], T]) -> T:
    """Run `fn` on a pooled connection, turning connectivity failures into DatabaseUnavailable."""
    db = current()
    try:
        with db.connection_context():
            return fn()
    except MaxConnectionsExceeded as exc:
        raise DatabaseUnavailable("connection pool exhausted") from exc
    except (peewee.OperationalError, peewee.InterfaceError) as exc:
        if _is_lock_or_connect_error(exc):
            raise DatabaseUnavailable(
                str(exc).splitlines()[0] if str(exc) else "unavailable"
            ) from exc
        raise


def _is_lock_or_connect_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(
        marker in text
        for marker in (
            "database is locked",
            "could not connect",
            "connection refused",
            "server closed the connection",
            "terminating connection",
            "connection already closed",
            "timeout",
            "exceeded maximum connections",
            "unable to open database",
        )
    )


def ping() -> bool:
    try:
        run(lambda: current().execute_sql("SELECT 1").fetchone())
    except Exception:
        return False
    return True


def try_advisory_lock(key: int) -> bool:
    """PostgreSQL session lock (held by this pooled connection); always True on SQLite."""
    database = current()
    if not is_postgres(database):
        return True
    row = database.execute_sql("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def advisory_unlock(key: int) -> None:
    database = current()
    if is_postgres(database):
        database.execute_sql("SELECT pg_advisory_unlock(%s)", (key,))
