"""Bench databases: generated fast with bulk inserts, on SQLite files or PostgreSQL schemas.

- `big`: 1,000,000 calls (and appointments) of 100 doctors with 10,000 calls each, one of them
  the bench doctor `doc_0000`; cached under bench/.data/ (SQLite) or as schema `big` of the
  bench database (PostgreSQL), and regenerated when missing or of another DATASET_VERSION.
- `small`: the bench doctor's same 10,000 calls alone: the same query over 100x fewer rows.
- `ops`: 2,000 confirmed appointments with their calls, fresh for every block of write
  scenarios (initiate, token, events).

The schema always comes from the service's own migrations; secondary indexes are dropped for
the load and re-created from their own definitions, so they are exactly the migrated ones.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import peewee
import psycopg2

from service.store import db
from service.store.migrate import migrate

DATA_DIR = Path(__file__).resolve().parent / ".data"
# 2: the call columns of the waiting room and of uncertain durations.
DATASET_VERSION = "2"
BIG_CALLS = 1_000_000
DOCTORS = 100
PATIENTS = 100_000
BENCH_DOCTOR = "doc_0000"
OPS_APPOINTMENTS = 2_000
OPS_DOCTORS = 20
START_MS = 1_600_000_000_000  # 2020-09-13: the big history spans about 4.8 years from here
STEP_MS = 150_000
CHUNK = 50_000
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/videocalls_bench"
LOADED_TABLES = ("users", "appointments", "video_calls")

log = logging.getLogger("bench.data")

USER_COLUMNS = (
    "uid", "first_name", "last_name", "email", "profile_image_url", "is_active",
    "created_at", "updated_at",
)  # fmt: skip
APPOINTMENT_COLUMNS = (
    "id", "doctor_uid", "patient_uid", "appointment_date", "start_time", "end_time", "timezone",
    "status", "ends_at", "created_at", "updated_at",
)  # fmt: skip
CALL_COLUMNS = (
    "id", "appointment_id", "room_name", "doctor_uid", "patient_uid", "status", "started_at",
    "ended_at", "duration", "doctor_joined_at", "patient_joined_at", "created_at", "updated_at",
    "tracked_by_server", "doctor_presence", "patient_presence", "missing", "open_sessions",
    "duration_uncertain", "lobby_visits", "recordings",
)  # fmt: skip

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Dataset:
    kind: str  # "sqlite" or "postgresql"
    name: str
    url: str  # the service's DATABASE_URL
    calls: int
    generated_s: float  # 0 when taken from the cache


# --- rows ---------------------------------------------------------------------------------


def _hhmm(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def _user(uid: str, last: str) -> Row:
    return (uid, "Bench", last, None, None, True, START_MS, START_MS)


def history(only_bench_doctor: bool) -> Iterator[tuple[Row, Row]]:
    """(appointment, call) rows of the big history, deterministic; doctors interleave."""
    rng = random.Random(6)
    for i in range(BIG_CALLS):
        created = START_MS + i * STEP_MS + rng.randrange(1000)
        call_id = f"vc_{rng.getrandbits(128):032x}"
        patient = f"pat_{rng.randrange(PATIENTS):06d}"
        doctor = i % DOCTORS
        if only_bench_doctor and doctor != 0:
            continue
        apt = f"apt_{i:07d}"
        start, end = created + 60_000, created + 1_860_000
        yield (
            (apt, f"doc_{doctor:04d}", patient, _day(created), _hhmm(created), _hhmm(end),
             "UTC", "COMPLETED", end, created, created),
            (call_id, apt, f"appointment_{apt}", f"doc_{doctor:04d}", patient, "COMPLETED",
             start, end, 1800, start, start, created, end, False, 1800, 1800, None, 0,
             False, "[]", "[]"),
        )  # fmt: skip


def history_users(patients: Iterable[str]) -> list[Row]:
    doctors = [_user(f"doc_{d:04d}", f"Doctor{d:04d}") for d in range(DOCTORS)]
    return doctors + [_user(p, "Patient" + p[4:]) for p in sorted(set(patients))]


def ops_rows(count: int = OPS_APPOINTMENTS) -> tuple[list[Row], list[Row], list[Row]]:
    """Users, `count` confirmed appointments tomorrow, and their SCHEDULED calls (no events
    yet): ops_00000, ops_00001, ... with doctors doc_0000 to doc_0019 in turn."""
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    start = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 10, tzinfo=UTC)
    ends_at = int((start + timedelta(minutes=30)).timestamp() * 1000)
    now = int(time.time() * 1000)
    users = [_user(f"doc_{d:04d}", f"Doctor{d:04d}") for d in range(OPS_DOCTORS)]
    users += [_user(f"pat_{p:06d}", f"Patient{p:06d}") for p in range(count)]
    appointments, calls = [], []
    for i in range(count):
        apt, doctor, patient = f"ops_{i:05d}", f"doc_{i % OPS_DOCTORS:04d}", f"pat_{i:06d}"
        appointments.append(
            (apt, doctor, patient, tomorrow.isoformat(), "10:00", "10:30", "UTC", "CONFIRMED",
             ends_at, now, now)
        )  # fmt: skip
        calls.append(
            (f"vc_ops{i:026d}", apt, f"appointment_{apt}", doctor, patient, "SCHEDULED",
             None, None, None, None, None, now, now, False, None, None, None, 0,
             False, "[]", "[]")
        )  # fmt: skip
    return users, appointments, calls


# --- connections --------------------------------------------------------------------------


def postgres_base() -> str:
    return os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)


def postgres_available() -> str:
    """'' if the bench database can be used (created if missing), else the reason."""
    base = postgres_base()
    admin = base.rsplit("/", 1)[0] + "/postgres"
    name = base.rsplit("/", 1)[1].split("?")[0]
    try:
        conn = psycopg2.connect(admin, connect_timeout=5)
    except psycopg2.Error as exc:
        return str(exc).strip().splitlines()[0]
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return ""


def schema_url(schema: str) -> str:
    return f"{postgres_base()}?options={quote(f'-csearch_path={schema}')}"


def _pg(sql: str) -> None:
    conn = psycopg2.connect(postgres_base(), connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _bound(url: str) -> peewee.Database:
    database = db.make_database(url, 4)
    db.bind(database)
    return database


def _close(database: peewee.Database) -> None:
    database.close_all()  # type: ignore[attr-defined]


# --- loading ------------------------------------------------------------------------------


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Loader:
    """Bulk insert into the migrated tables of one database, secondary indexes set aside."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.url = url
        if kind == "sqlite":
            self.sqlite = sqlite3.connect(url.removeprefix("sqlite:///"))
            self.sqlite.execute("PRAGMA journal_mode=OFF")
            self.sqlite.execute("PRAGMA synchronous=OFF")
        else:
            self.pg = psycopg2.connect(postgres_base(), options=_options(url))
        self.indexes = self._drop_indexes()

    def _drop_indexes(self) -> list[str]:
        names = ", ".join(f"'{t}'" for t in LOADED_TABLES)
        if self.kind == "sqlite":
            found = self.sqlite.execute(
                f"SELECT name, sql FROM sqlite_master WHERE type = 'index' "  # noqa: S608
                f"AND tbl_name IN ({names}) AND sql IS NOT NULL"
            ).fetchall()
            for name, _ in found:
                self.sqlite.execute(f'DROP INDEX "{name}"')
            return [sql for _, sql in found]
        with self.pg.cursor() as cur:
            cur.execute(
                f"SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "  # noqa: S608
                f"AND tablename IN ({names}) AND indexname NOT LIKE '%%_pkey'"
            )
            found = cur.fetchall()
            for name, _ in found:
                cur.execute(f'DROP INDEX "{name}"')
        self.pg.commit()
        return [sql for _, sql in found]

    def load(self, table: str, columns: Sequence[str], rows: Iterable[Row]) -> None:
        for chunk in _chunks(rows, CHUNK):
            if self.kind == "sqlite":
                marks = ", ".join("?" for _ in columns)
                self.sqlite.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                    chunk,
                )
            else:
                buf = io.StringIO()
                csv.writer(buf).writerows(chunk)
                buf.seek(0)
                with self.pg.cursor() as cur:
                    cur.copy_expert(
                        f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buf
                    )

    def finish(self) -> None:
        if self.kind == "sqlite":
            for sql in self.indexes:
                self.sqlite.execute(sql)
            self.sqlite.commit()
            self.sqlite.execute("PRAGMA journal_mode=WAL")
            self.sqlite.close()
            return
        with self.pg.cursor() as cur:
            for sql in self.indexes:
                cur.execute(sql)
        self.pg.commit()
        self.pg.autocommit = True
        with self.pg.cursor() as cur:
            # What autovacuum would have done by the time a table is this large.
            cur.execute("VACUUM ANALYZE")
        self.pg.close()


def _options(url: str) -> str:
    from urllib.parse import parse_qs, unquote, urlparse

    return unquote(parse_qs(urlparse(url).query).get("options", [""])[0])


def _write_meta(kind: str, url: str, calls: int) -> None:
    database = _bound(url)
    with database.connection_context():
        database.execute_sql("CREATE TABLE bench_meta (key VARCHAR(32) PRIMARY KEY, value TEXT)")
        for key, value in (("version", DATASET_VERSION), ("calls", str(calls))):
            database.execute_sql(
                "INSERT INTO bench_meta VALUES (%s, %s)"
                if kind == "postgresql"
                else "INSERT INTO bench_meta VALUES (?, ?)",
                (key, value),
            )
    _close(database)


def _cached(url: str, calls: int) -> bool:
    database = _bound(url)
    try:
        with database.connection_context():
            rows = dict(database.execute_sql("SELECT key, value FROM bench_meta").fetchall())
    except peewee.DatabaseError:
        return False
    finally:
        _close(database)
    return rows.get("version") == DATASET_VERSION and rows.get("calls") == str(calls)


def _migrated(url: str) -> None:
    database = _bound(url)
    migrate()
    _close(database)


def _fill(kind: str, url: str, fill: Callable[[_Loader], None]) -> None:
    _migrated(url)
    loader = _Loader(kind, url)
    fill(loader)
    loader.finish()


def _fill_history(only_bench_doctor: bool) -> Callable[[_Loader], None]:
    def fill(loader: _Loader) -> None:
        patients: set[str] = set()

        def appointments() -> Iterator[Row]:
            for appointment, _ in history(only_bench_doctor):
                patients.add(appointment[2])
                yield appointment

        loader.load("appointments", APPOINTMENT_COLUMNS, appointments())
        loader.load("video_calls", CALL_COLUMNS, (c for _, c in history(only_bench_doctor)))
        loader.load("users", USER_COLUMNS, history_users(patients))

    return fill


def history_dataset(kind: str, name: str) -> Dataset:
    """`big` (1,000,000 calls) or `small` (the bench doctor's 10,000), cached."""
    only = name == "small"
    calls = BIG_CALLS // DOCTORS if only else BIG_CALLS
    if kind == "sqlite":
        DATA_DIR.mkdir(exist_ok=True)
        path = DATA_DIR / f"{name}.sqlite"
        url = f"sqlite:///{path}"
        if path.exists() and _cached(url, calls):
            _migrated(url)  # a service migration added since the cache was made
            return Dataset(kind, name, url, calls, 0.0)
        began = time.monotonic()
        tmp = DATA_DIR / f"{name}.tmp.sqlite"
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        _fill(kind, f"sqlite:///{tmp}", _fill_history(only))
        _write_meta(kind, f"sqlite:///{tmp}", calls)
        for old in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            old.unlink(missing_ok=True)
        tmp.rename(path)
        return Dataset(kind, name, url, calls, time.monotonic() - began)
    url = schema_url(name)
    if _cached(url, calls):
        _migrated(url)
        return Dataset(kind, name, url, calls, 0.0)
    began = time.monotonic()
    _pg(f"DROP SCHEMA IF EXISTS {name}_new CASCADE; CREATE SCHEMA {name}_new")
    _fill(kind, schema_url(f"{name}_new"), _fill_history(only))
    _write_meta(kind, schema_url(f"{name}_new"), calls)
    _pg(f"DROP SCHEMA IF EXISTS {name} CASCADE; ALTER SCHEMA {name}_new RENAME TO {name}")
    return Dataset(kind, name, url, calls, time.monotonic() - began)


def ops_dataset(kind: str, name: str = "ops", count: int = OPS_APPOINTMENTS) -> Dataset:
    """A fresh small database for the write scenarios (`count` appointments with calls)."""
    users, appointments, calls = ops_rows(count)

    def fill(loader: _Loader) -> None:
        loader.load("users", USER_COLUMNS, users)
        loader.load("appointments", APPOINTMENT_COLUMNS, appointments)
        loader.load("video_calls", CALL_COLUMNS, calls)

    if kind == "sqlite":
        DATA_DIR.mkdir(exist_ok=True)
        path = DATA_DIR / f"{name}.sqlite"
        for old in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            old.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        _pg(f"DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")
        url = schema_url(name)
    _fill(kind, url, fill)
    return Dataset(kind, name, url, len(calls), 0.0)


def drop_ops(kind: str, name: str = "ops") -> None:
    if kind == "postgresql":
        _pg(f"DROP SCHEMA IF EXISTS {name} CASCADE")
