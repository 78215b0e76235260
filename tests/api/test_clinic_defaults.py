"""Defaults a clinic would choose (issue 33, item 6): no recording or live streaming unless
granted, development authentication only on a loopback bind, the SQLite file and its folder
private."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from harness.env import base_env
from service import cli, logs
from service.config import load_settings
from service.store import db
from tests.api.conftest import Api


def test_nobody_records_or_streams_unless_the_operator_grants_it(seeded: Api) -> None:
    for uid in ("doc", "pat"):
        body = seeded.initiate(uid, "appt1").json()
        features = jwt.decode(body["jitsiToken"], options={"verify_signature": False})["context"][
            "features"
        ]
        assert features["recording"] is False, uid
        assert features["livestreaming"] is False, uid
    granted = load_settings(base_env(JITSI_DOCTOR_FEATURES="recording,screen-sharing"))
    assert granted.doctor_features == ("recording", "screen-sharing")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[list[dict[str, Any]]]:
    """`videocalls serve` up to uvicorn, which is replaced: nothing listens."""
    calls: list[dict[str, Any]] = []
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    # serve configures the process's root logger; the tests after this one keep theirs.
    monkeypatch.setattr(logs, "configure", lambda level: None)
    for name, value in base_env(DATABASE_URL=database_url).items():
        monkeypatch.setenv(name, value)
    yield calls


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "videocalls.example"])
def test_dev_authentication_is_refused_on_a_reachable_bind(
    served: list[dict[str, Any]], host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--host", host]) == 2
    assert served == []
    assert "AUTH_MODE=dev is served only on a loopback address" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_dev_authentication_on_loopback_is_served(served: list[dict[str, Any]], host: str) -> None:
    assert cli.main(["serve", "--host", host]) == 0
    assert [call["host"] for call in served] == [host]
    assert served[0]["forwarded_allow_ips"] == "127.0.0.1"


def test_the_sqlite_file_and_its_folder_are_created_private(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual default, which would make both world-readable
    try:
        path = tmp_path / "data" / "nested" / "videocalls.db"
        database: Any = db.make_database(f"sqlite:///{path}")
        database.connect()
        database.execute_sql("CREATE TABLE t (x INTEGER)")
        database.close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700


def test_an_existing_folder_keeps_its_permissions(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    os.chmod(shared, 0o750)  # noqa: S103 (an operator's group-readable folder, on purpose)
    db.make_database(f"sqlite:///{shared / 'videocalls.db'}")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o750
    assert stat.S_IMODE((shared / "videocalls.db").stat().st_mode) == 0o600
