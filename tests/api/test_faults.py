"""No fault can stop the record: real database faults answer 503 with Retry-After, /readyz says
so, and once the fault is gone, re-sending what was not acknowledged gives the same record as
a run without the fault.

Faults are real, not mocks: PostgreSQL refusing connections (a database this test creates,
set ALLOW_CONNECTIONS false, or a role at CONNECTION LIMIT 0, with its backends terminated),
and SQLite on a tiny tmpfs that fills up or is mounted read-only.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import psycopg2
import pytest
from starlette.testclient import TestClient

from harness.env import base_env
from harness.eventstream import Stream, consultation, signed
from service.api.health import PROBE_INTERVAL_MS
from service.app import create_app
from service.config import load_settings
from service.store import db, uow
from service.store.migrate import migrate
from tests.api.conftest import Api
from tests.clock import FrozenClock
from tests.conftest import require

ROOM = "appointment_appt1"
VOLATILE = {"id", "createdAt", "updatedAt"}


@contextlib.contextmanager
def service(database_url: str, clock: FrozenClock, secret: str) -> Iterator[Api]:
    """The app on `database_url` (migrated), seeded with doc, pat and a CONFIRMED appt1."""
    settings = load_settings(
        base_env(DATABASE_URL=database_url, PROSODY_EVENTS_SECRET=secret, SWEEP_INTERVAL="0")
    )
    app = create_app(settings)
    migrate()
    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api(client, settings, clock)
        for uid in ("doc", "pat"):
            api.put_user(uid)
        api.put_appointment("appt1")
        assert api.initiate("doc", "appt1").status_code == 200
        yield api


def post(api: Api, event: dict[str, Any]) -> Any:
    body, headers = signed(api.settings.prosody_events_secrets[0], event)
    return api.client.post("/api/prosody/events", content=body, headers=headers)


def record(api: Api) -> dict[str, Any]:
    """The details response without ids and bookkeeping times, which differ between runs."""
    response = api.client.get("/api/video-calls/appt1", headers=api.auth("doc"))
    assert response.status_code == 200, response.text
    body = response.json()
    body["videoCall"] = {k: v for k, v in body["videoCall"].items() if k not in VOLATILE}
    return body  # type: ignore[no-any-return]


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "database_unavailable"
    assert response.headers["retry-after"].isdigit()


def ready(api: Api) -> Any:
    """/readyz after its probe interval: a fresh write probe, not the last second's answer."""
    api.clock.advance(PROBE_INTERVAL_MS)
    return api.client.get("/readyz")


def run_through_fault(
    api: Api,
    events: list[dict[str, Any]],
    inject: Callable[[], None],
    clear: Callable[[], None],
) -> dict[str, Any]:
    """Send the stream with a fault from the third event on; then clear it and re-send."""
    assert ready(api).status_code == 200
    unacknowledged = []
    for index, event in enumerate(events):
        if index == 2:
            inject()
            probe = ready(api)
            assert probe.status_code == 503, probe.text
            assert probe.headers["retry-after"].isdigit()
            # Every kind of request meets the same fault with the same answer.
            assert_unavailable(api.report("pat", "appt1", "join"))
            listing = api.client.get("/api/video-calls", headers=api.auth("doc"))
            assert_unavailable(listing)
            assert_unavailable(
                api.client.put(
                    "/api/admin/users/late",
                    json={"firstName": "Late"},
                    headers=api.admin(),
                )
            )
        response = post(api, event)
        if index < 2:
            assert response.status_code == 204, response.text
        else:
            assert_unavailable(response)
            unacknowledged.append(event)
    clear()
    assert ready(api).status_code == 200
    # Prosody's module re-sends what was not acknowledged, oldest first.
    for event in unacknowledged:
        assert post(api, event).status_code == 204
    return record(api)


@pytest.fixture
def stream_and_reference(
    tmp_path: Path, clock: FrozenClock
) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    """One consultation's events, and the record a fault-free run makes of them."""
    secret = base_env()["PROSODY_EVENTS_SECRET"]
    events = consultation(Stream(), ROOM, "doc", "pat", clock.ms - 900_000)
    with service(f"sqlite:///{tmp_path / 'reference.db'}", clock, secret) as api:
        for event in events:
            assert post(api, event).status_code == 204
        reference = record(api)
    assert reference["videoCall"]["status"] == "COMPLETED"
    return events, secret, reference


# --- SQLite on a tiny filesystem -------------------------------------------------------------


def _sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own (root may mount; CI runs as root)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = _sh("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount))
    require(done.returncode == 0, f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        _sh("umount", "-l", str(mount))


def test_sqlite_disk_full(
    tiny_fs: Path,
    clock: FrozenClock,
    stream_and_reference: tuple[list[dict[str, Any]], str, dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    events, secret, reference = stream_and_reference
    filler = tiny_fs / "filler"

    with service(f"sqlite:///{tiny_fs / 'videocalls.db'}", clock, secret) as api:

        def fill() -> None:
            # Write until the filesystem refuses: the database cannot grow by a single page.
            # Unbuffered: a partial write must not leave bytes behind for close() to flush
            # (and fail on), which happened whenever the free space was not a whole chunk.
            with open(filler, "wb", buffering=0) as fh, contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
                    os.fsync(fh.fileno())
            # The WAL file's last memory page may still have room for one small commit
            # (which then is on disk, honestly acknowledged); the probe's write uses it up.
            for _ in range(3):
                if ready(api).status_code == 503:
                    break

        # Reads are audited (AUDIT_READS): on a full disk their entry cannot be written, and a
        # read that cannot be recorded is not answered.
        assert run_through_fault(api, events, fill, filler.unlink) == reference
    # The log names the real fault, not peewee's failed ROLLBACK after SQLite ended the
    # transaction itself ("cannot rollback - no transaction is active").
    reasons = {
        getattr(r, "fields", {}).get("reason")
        for r in caplog.records
        if r.getMessage() == "database unavailable"
    }
    assert reasons == {"sqlite SQLITE_FULL"}


def test_sqlite_read_only_filesystem(
    tiny_fs: Path,
    clock: FrozenClock,
    stream_and_reference: tuple[list[dict[str, Any]], str, dict[str, Any]],
) -> None:
    """The filesystem goes read-only under the service (as ext4 does on errors=remount-ro).

    Linux refuses to remount a filesystem read-only while files are open for writing, so the
    service's view is a bind mount of it, and that bind mount is what turns read-only.
    """
    events, secret, reference = stream_and_reference
    view = tiny_fs.parent / "view"
    view.mkdir()
    assert _sh("mount", "--bind", str(tiny_fs), str(view)).returncode == 0
    try:

        def read_only() -> None:
            # Open connections keep their write access to the file: drop them, as a restart
            # of a crashed disk would, so the next ones open on the read-only view.
            db.current().close_all()  # type: ignore[attr-defined]
            done = _sh("mount", "-o", "remount,bind,ro", str(view))
            assert done.returncode == 0, done.stderr

        def read_write() -> None:
            done = _sh("mount", "-o", "remount,bind,rw", str(view))
            assert done.returncode == 0, done.stderr

        with service(f"sqlite:///{view / 'videocalls.db'}", clock, secret) as api:
            # In WAL mode SQLite cannot even read without writing its shared-memory file.
            record = run_through_fault(api, events, read_only, read_write)
            assert record == reference
    finally:
        _sh("umount", "-l", str(view))


# --- PostgreSQL refusing connections -----------------------------------------------------------


def _admin_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    require(bool(url), "TEST_DATABASE_URL is not set (PostgreSQL fault tests)")
    return url


def _execute(url: str, *statements: str) -> None:
    connection = psycopg2.connect(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def _with(url: str, *, database: str, user: str | None = None) -> str:
    parts = urlparse(url)
    netloc = parts.netloc if user is None else f"{user}@{parts.netloc.rpartition('@')[2]}"
    return urlunparse(parts._replace(netloc=netloc, path=f"/{database}", query=""))


def _terminate(name: str) -> str:
    return (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608 - our own name
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )


@pytest.fixture
def own_database() -> Iterator[tuple[str, str, str]]:
    """(admin url, database name, role name): a database and an owner role of this test only.

    The shared `test` database other suites use is never touched.
    """
    admin = _admin_url()
    suffix = uuid.uuid4().hex[:10]
    name, role = f"vc_fault_{suffix}", f"vc_fault_role_{suffix}"
    _execute(admin, f'CREATE ROLE "{role}" LOGIN', f'CREATE DATABASE "{name}" OWNER "{role}"')
    try:
        yield admin, name, role
    finally:
        _execute(
            admin,
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true',
            f'ALTER ROLE "{role}" CONNECTION LIMIT -1',
            _terminate(name),
            f'DROP DATABASE IF EXISTS "{name}"',
            f'DROP ROLE IF EXISTS "{role}"',
        )


@pytest.mark.postgres
def test_postgresql_not_accepting_connections(
    own_database: tuple[str, str, str],
    clock: FrozenClock,
    stream_and_reference: tuple[list[dict[str, Any]], str, dict[str, Any]],
) -> None:
    admin, name, role = own_database
    events, secret, reference = stream_and_reference

    def refuse() -> None:
        _execute(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false', _terminate(name))

    def allow() -> None:
        _execute(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    with service(_with(admin, database=name, user=role), clock, secret) as api:
        assert run_through_fault(api, events, refuse, allow) == reference


@pytest.mark.postgres
def test_postgresql_too_many_connections(
    own_database: tuple[str, str, str],
    clock: FrozenClock,
    stream_and_reference: tuple[list[dict[str, Any]], str, dict[str, Any]],
) -> None:
    admin, name, role = own_database
    events, secret, reference = stream_and_reference

    def exhaust() -> None:
        _execute(admin, f'ALTER ROLE "{role}" CONNECTION LIMIT 0', _terminate(name))

    def relieve() -> None:
        _execute(admin, f'ALTER ROLE "{role}" CONNECTION LIMIT -1')

    with service(_with(admin, database=name, user=role), clock, secret) as api:
        assert run_through_fault(api, events, exhaust, relieve) == reference


# --- durability -------------------------------------------------------------------------------


def _pragma(name: str) -> Any:
    database: Any = db.current()
    return database.execute_sql(f"PRAGMA {name}").fetchone()


def test_sqlite_commits_are_synchronous_full(tmp_path: Path, clock: FrozenClock) -> None:
    """A 2xx must survive a power cut: every pooled SQLite connection fsyncs each commit."""
    secret = base_env()["PROSODY_EVENTS_SECRET"]
    with service(f"sqlite:///{tmp_path / 'durable.db'}", clock, secret):
        modes = uow.run(lambda: _pragma("synchronous"))
        journal = uow.run(lambda: _pragma("journal_mode"))
    assert modes == (2,)  # FULL
    assert journal == ("wal",)
