"""Databases: pooled SQLite (default) or pooled PostgreSQL, picked by DATABASE_URL; and which
errors mean "unavailable". Connections and transactions are store/uow.py's."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlparse

import peewee
import psycopg2
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

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


def _private_file(path: str) -> None:
    """The database's folder (0700) and file (0600), when this creates them: the file holds
    patients' names and appointments, and the default umask would make both world-readable.
    An existing folder or file keeps the permissions its operator gave it."""
    folder = os.path.dirname(os.path.abspath(path))
    missing = []
    while folder and not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for created in reversed(missing):
        try:
            os.mkdir(created, 0o700)
        except FileExistsError:
            continue  # another worker made it first, the same way
        os.chmod(created, 0o700)  # mkdir's mode is narrowed by the umask, never widened
    if not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)


def make_database(url: str, pool_size: int = 20) -> peewee.Database:
    """Build a pooled database from a `sqlite:///path` or `postgresql://...` URL."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path[1:]) if parsed.path.startswith("/") else parsed.path
        if not path:
            raise ValueError("sqlite URL needs a path: sqlite:///data/videocalls.db")
        if path != ":memory:":
            _private_file(path)
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
