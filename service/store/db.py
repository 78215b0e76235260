"""Database connections: pooled SQLite (default) or pooled PostgreSQL, picked by DATABASE_URL."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlparse

import peewee
import psycopg2
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase, PooledSqliteDatabase

T = TypeVar("T")
log = logging.getLogger("service.store")

# Proxies let the models be declared once and bound to whichever database the settings name.
database_proxy = peewee.DatabaseProxy()

# WAL lets readers run beside the single writer; busy_timeout makes a writer wait for the lock
# instead of failing at once with "database is locked". synchronous=FULL fsyncs the WAL at
# every commit: a 2xx means the change survives a power cut, and Prosody deletes what we
# acknowledged (NORMAL can lose the last commits; docs/benchmarks.md has the cost).
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",
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
    """Run `fn` on a pooled connection, turning unavailability into DatabaseUnavailable.

    Any other database error (a bug, a constraint) propagates: it is not the caller's to retry.
    """
    db = current()
    try:
        with db.connection_context():
            try:
                return fn()
            except peewee.DatabaseError as exc:
                reason = unavailability(exc)
                if reason is None:
                    raise
                # Do not pool a connection that failed this way: a dead socket, or a SQLite
                # file opened read-only, would keep failing after the fault is gone.
                _discard_connection(db)
                log.warning("database unavailable", extra={"fields": {"reason": reason}})
                raise DatabaseUnavailable(reason) from exc
    except MaxConnectionsExceeded as exc:
        raise DatabaseUnavailable("connection pool exhausted") from exc
    except peewee.DatabaseError as exc:
        # Failing to connect at all (refused, not accepting connections, cannot open).
        reason = unavailability(exc)
        if reason is None:
            raise
        log.warning("database unavailable", extra={"fields": {"reason": reason}})
        raise DatabaseUnavailable(reason) from exc


def _discard_connection(db: peewee.Database) -> None:
    """Close the driver connection in place; the pool then drops it instead of reusing it."""
    # Closing a broken connection may fail; it is gone either way.
    with contextlib.suppress(Exception):
        db.connection().close()


# SQLite primary result codes (https://sqlite.org/rescode.html) that mean "cannot write or
# read right now" rather than "this statement is wrong": busy/locked, out of memory,
# read-only file, I/O error, disk full, cannot open, lock protocol.
SQLITE_UNAVAILABLE = {5: "busy", 6: "locked", 7: "nomem", 8: "readonly", 10: "ioerr",
                      13: "full", 14: "cantopen", 15: "protocol"}  # fmt: skip
# PostgreSQL SQLSTATE classes and codes with the same meaning: connection exceptions,
# insufficient resources (too many connections, disk full), operator intervention
# (shutdown, cannot connect now), system errors, a read-only standby, and transaction
# rollbacks the server chose (serialization, deadlock), which a retry resolves.
PG_UNAVAILABLE_CLASSES = ("08", "53", "57", "58", "40")
PG_UNAVAILABLE_CODES = ("25006",)


def _driver_errors(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what peewee wrapped, and what it was raised while handling.

    A failed write in SQLite can end the transaction by itself; peewee's ROLLBACK then fails
    with "no transaction is active", and the real fault is that error's context.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 16:
        item = pending.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        pending.extend(a for a in item.args if isinstance(a, BaseException))
        pending.extend(e for e in (item.__cause__, item.__context__) if e is not None)


def unavailability(exc: BaseException) -> str | None:
    """Why the database cannot serve right now, or None when the error is something else.

    Judged by error class and code (sqlite3's `sqlite_errorcode`, psycopg2's `pgcode`), never
    by the wording of the message.
    """
    for item in _driver_errors(exc):
        code = getattr(item, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in SQLITE_UNAVAILABLE:
            return f"sqlite {getattr(item, 'sqlite_errorname', SQLITE_UNAVAILABLE[code & 0xFF])}"
        if type(item).__module__.startswith("psycopg2"):
            pgcode = getattr(item, "pgcode", None)
            if pgcode is None and isinstance(
                item, (psycopg2.OperationalError, psycopg2.InterfaceError)
            ):
                # libpq failures carry no SQLSTATE: refused, dropped or closed connections.
                return "postgresql connection failed"
            if isinstance(pgcode, str) and (
                pgcode[:2] in PG_UNAVAILABLE_CLASSES or pgcode in PG_UNAVAILABLE_CODES
            ):
                return f"postgresql sqlstate {pgcode}"
    return None


def ping() -> bool:
    try:
        run(lambda: current().execute_sql("SELECT 1").fetchone())
    except Exception:
        return False
    return True


def can_write() -> bool:
    """Readiness: one committed write (the single row of `readiness_probe`).

    `SELECT 1` succeeds on a full disk, a read-only file or a read-only standby; a write
    that must reach the disk does not. The row changes on every probe (a counter): SQLite
    does not write a row whose content is unchanged, and that probe would prove nothing.
    """

    def probe() -> None:
        with write_transaction():
            current().execute_sql("UPDATE readiness_probe SET writes = writes + 1 WHERE id = 1")

    try:
        run(probe)
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
