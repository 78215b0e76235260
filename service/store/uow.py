"""The unit of work: every use case reads in `with uow.read():` and writes in `with uow.write():`.

This module is the one home of what every database access needs: a pooled connection held
for the whole block (and shared by blocks nested in it), the transaction, the queue of this
process's SQLite writers, and the translation of "the database cannot serve now" into
DatabaseUnavailable (503). Any other database error (a bug, a constraint) propagates: it is
not the caller's to retry.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import peewee
from playhouse.pool import MaxConnectionsExceeded

from service.store.db import DatabaseUnavailable, current, unavailability

T = TypeVar("T")
log = logging.getLogger("service.store")

# Writers of one process queue here, in order, instead of each polling SQLite's lock in the
# busy handler (which sleeps with growing back-off and makes long tails under load).
_sqlite_writer = threading.Lock()
# Writers of several processes (`serve --workers 2`, a CLI import beside the service) queue
# on an flock of a file beside the database: the kernel wakes the next one when the lock is
# free, where SQLite's busy handler would sleep 1, 2, 5 ... 100 ms between tries. One
# descriptor per database file and process (flock is per open file, so two processes
# exclude each other; this process's threads are already queued by _sqlite_writer).
_lock_files: dict[str, int | None] = {}
_lock_files_guard = threading.Lock()
# How deep this thread is in read()/write() blocks: only the outermost opens and closes the
# connection, so a block inside another runs on the same connection (and transaction).
_depth = threading.local()
# Work deferred to the end of this thread's write transaction (see `defer`).
_deferred = threading.local()


def _items() -> list[Callable[[], None]]:
    items: list[Callable[[], None]] | None = getattr(_deferred, "items", None)
    if items is None:
        items = _deferred.items = []
    return items


@contextmanager
def read() -> Iterator[None]:
    """A pooled connection for the block. Each statement sees what is committed (no
    transaction): a read that must agree with a write belongs inside `write()`."""
    if getattr(_depth, "n", 0):
        _depth.n += 1
        try:
            yield
        finally:
            _depth.n -= 1
        return
    database = current()
    try:
        with database.connection_context():
            _depth.n = 1
            try:
                yield
            except peewee.DatabaseError as exc:
                reason = unavailability(exc)
                if reason is None:
                    raise
                # Do not pool a connection that failed this way: a dead socket, or a SQLite
                # file opened read-only, would keep failing after the fault is gone.
                _discard_connection(database)
                log.warning("database unavailable", extra={"fields": {"reason": reason}})
                raise DatabaseUnavailable(reason) from exc
            finally:
                _depth.n = 0
    except MaxConnectionsExceeded as exc:
        raise DatabaseUnavailable("connection pool exhausted") from exc
    except peewee.DatabaseError as exc:
        # Failing to connect at all (refused, not accepting connections, cannot open).
        reason = unavailability(exc)
        if reason is None:
            raise
        log.warning("database unavailable", extra={"fields": {"reason": reason}})
        raise DatabaseUnavailable(reason) from exc


@contextmanager
def write() -> Iterator[None]:
    """A transaction that takes the write lock up front, committed when the block ends.

    SQLite's default deferred BEGIN upgrades to a write lock mid-transaction and fails with
    "database is locked" when two writers race; BEGIN IMMEDIATE queues them on busy_timeout
    instead (between processes), and a process-wide lock queues this process's writers.
    PostgreSQL needs nothing special: conditional updates and row locks do the rest. Inside
    another write the block is a savepoint: it rolls back alone if it raises.
    """
    with read():
        database = current()
        if database.in_transaction():
            # A savepoint: what it deferred goes with it if it rolls back.
            deferred = _items()
            mark = len(deferred)
            try:
                with database.atomic():
                    yield
            except BaseException:
                del deferred[mark:]
                raise
            return
        _deferred.items = []
        _deferred.active = True
        try:
            if not isinstance(database, peewee.SqliteDatabase):
                with database.atomic():
                    yield
                    _run_deferred()
                return
            with _sqlite_writer, _process_lock(database), database.atomic("IMMEDIATE"):
                yield
                _run_deferred()
        finally:
            _deferred.items = []
            _deferred.active = False


def defer(work: Callable[[], None]) -> bool:
    """Run `work` at the end of the current write transaction, just before it commits (dropped
    if it rolls back). The audit chain appends this way (store/audit_log.py): its lock is then
    the last one a transaction takes and is held only to the commit, so no transaction waits
    for a row lock while holding it, and none waits for it while holding a row lock another
    one holding it needs (a deadlock on PostgreSQL otherwise). False, and nothing deferred,
    outside a `write()` block."""
    if not getattr(_deferred, "active", False):
        return False
    _items().append(work)
    return True


def _run_deferred() -> None:
    items = _items()
    index = 0
    # Deferred work may defer more (run in order, after it).
    while index < len(items):
        items[index]()
        index += 1


def lock_path(database: peewee.SqliteDatabase) -> str | None:
    """The file whose flock queues this database's writers across processes (None: an
    in-memory database, which no other process can open)."""
    name = str(database.database)
    if name == ":memory:" or name.startswith("file:"):
        return None
    return os.path.abspath(name) + "-writer.lock"


def _lock_fd(database: peewee.SqliteDatabase) -> int | None:
    path = lock_path(database)
    if path is None:
        return None
    with _lock_files_guard:
        if path not in _lock_files:
            fd = None
            # Read-only is enough to flock, and a descriptor open for writing would keep the
            # filesystem from being remounted read-only. A file that cannot be opened at all
            # (a read-only directory before the service ever wrote) leaves writers to
            # SQLite's own lock.
            for flags in (os.O_RDONLY | os.O_CREAT, os.O_RDONLY):
                try:
                    fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
                    break
                except OSError:
                    continue
            _lock_files[path] = fd
        return _lock_files[path]


@contextmanager
def _process_lock(database: peewee.SqliteDatabase) -> Iterator[None]:
    fd = _lock_fd(database)
    if fd is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def run(fn: Callable[[], T]) -> T:
    """`fn()` inside `read()`: for scripts and tests that call the store directly."""
    with read():
        return fn()


def _discard_connection(database: peewee.Database) -> None:
    """Close the driver connection in place; the pool then drops it instead of reusing it."""
    # Closing a broken connection may fail; it is gone either way.
    with contextlib.suppress(Exception):
        database.connection().close()


def ping() -> bool:
    try:
        with read():
            current().execute_sql("SELECT 1").fetchone()
    except Exception:
        return False
    return True


def can_write() -> bool:
    """Readiness: one committed write (the single row of `readiness_probe`).

    `SELECT 1` succeeds on a full disk, a read-only file or a read-only standby; a write
    that must reach the disk does not. The row changes on every probe (a counter): SQLite
    does not write a row whose content is unchanged, and that probe would prove nothing.
    """
    try:
        with write():
            current().execute_sql("UPDATE readiness_probe SET writes = writes + 1 WHERE id = 1")
    except Exception:
        return False
    return True
