"""Shared fixtures: settings, and every database test on SQLite and on PostgreSQL.

PostgreSQL tests use TEST_DATABASE_URL (CI sets it). Without it they skip locally and FAIL in
CI, so a missing database can never turn the PostgreSQL suite green by skipping it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import hypothesis
import peewee
import pytest
from playwright.sync_api import Browser

from harness.clock import real_now_ms
from harness.env import base_env
from service import clock as service_clock
from service.config import Settings, load_settings
from service.store import db, uow
from service.store.migrate import migrate
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.clock import FrozenClock
from tests.store.support import reset_for_tests

IN_CI = bool(os.environ.get("CI"))

# In CI, property tests and schemathesis run the same examples every time, so a landing never
# depends on luck; locally they explore new examples on every run.
hypothesis.settings.register_profile("ci", derandomize=True, database=None)
if IN_CI:
    hypothesis.settings.load_profile("ci")


def require(condition: bool, reason: str) -> None:
    """Skip locally, fail in CI: a suite that silently skips in CI has not run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def clock() -> Iterator[FrozenClock]:
    """The service's clock, frozen at the real time the test starts (see tests/clock.py)."""
    frozen = FrozenClock(real_now_ms())
    service_clock.use_source(frozen)
    yield frozen
    service_clock.use_source(None)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private schema in TEST_DATABASE_URL's database, dropped at the end of the session."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    require(bool(url), "TEST_DATABASE_URL is not set (PostgreSQL tests)")
    schema = f"vc_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = db.make_database(url, 2)
    admin.connect()
    admin.execute_sql(f'CREATE SCHEMA "{schema}"')
    admin.close()
    sep = "&" if "?" in url else "?"
    yield f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
    admin.connect()
    admin.execute_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.close()


_migrated: dict[str, peewee.Database] = {}


def _database_for(url: str) -> peewee.Database:
    if url not in _migrated:
        database = db.make_database(url, 40)
        db.bind(database)
        migrate()
        _migrated[url] = database
    return _migrated[url]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated, empty database bound to the models: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.getbasetemp() / 'videocalls.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    yield from _fresh(url)


def _fresh(url: str) -> Iterator[str]:
    database = _database_for(url)
    db.bind(database)
    uow.run(reset_for_tests)
    yield url
    db.bind(database)


@pytest.fixture
def postgres_database_url(postgres_url: str) -> Iterator[str]:
    """A migrated, empty PostgreSQL database, for tests that only make sense there."""
    yield from _fresh(postgres_url)


@pytest.fixture
def env(request: pytest.FixtureRequest, database_url: str) -> dict[str, str]:
    """The service's environment: receivers configured, so presence comes from the server,
    unless the test is about browsers' reports (`@pytest.mark.presence_from_clients`)."""
    if request.node.get_closest_marker("presence_from_clients") is not None:
        return base_env(DATABASE_URL=database_url, PRESENCE_SOURCE="clients")
    return base_env(DATABASE_URL=database_url)


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return repo_root().parent / "shared"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium under Playwright, one for the whole session: Playwright's sync API runs
    an event loop of its own, and a second one started beside it in the same thread fails."""
    from playwright.sync_api import sync_playwright

    require(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} missing (apt-get install chromium)")
    with sync_playwright() as running:
        launched = running.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
