"""service.store.uow: SQLite writers of several processes queue on one file lock."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from service.store import db, uow
from service.store.migrate import migrate


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[peewee.SqliteDatabase]:
    database = db.make_database(f"sqlite:///{tmp_path / 'queue.db'}", 4)
    db.bind(database)
    migrate()
    assert isinstance(database, peewee.SqliteDatabase)
    yield database
    database.close_all()  # type: ignore[attr-defined]


def writes() -> int:
    with uow.read():
        sql = "SELECT writes FROM readiness_probe WHERE id = 1"
        row = db.current().execute_sql(sql)  # type: ignore[no-untyped-call]
        return int(row.fetchone()[0])


def test_a_writer_waits_for_another_process_holding_the_lock(
    sqlite_file: peewee.SqliteDatabase,
) -> None:
    assert uow.can_write()  # the first write creates the lock file
    path = uow.lock_path(sqlite_file)
    assert path is not None
    assert path == str(Path(str(sqlite_file.database)).resolve()) + "-writer.lock"
    before = writes()
    # Another process's writer: its own open file description of the lock file.
    other = os.open(path, os.O_RDONLY)
    fcntl.flock(other, fcntl.LOCK_EX)
    done = threading.Event()

    def write() -> None:
        assert uow.can_write()
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        # Queued on the lock, not in SQLite: nothing written however long it waits.
        assert not done.wait(0.5)
        assert writes() == before
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
    assert done.wait(10)
    writer.join()
    assert writes() == before + 1


def test_an_in_memory_database_has_no_lock_file() -> None:
    database = db.make_database("sqlite:///:memory:", 1)
    assert isinstance(database, peewee.SqliteDatabase)
    assert uow.lock_path(database) is None
