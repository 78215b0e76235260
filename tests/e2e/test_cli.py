"""The `videocalls` command as operators run it: refusals, migrate, import, dev-token."""

from __future__ import annotations

import json
from pathlib import Path

import jwt

from service.store import db
from service.store.models import Appointment, User
from tests.clock import midday_window, real_now_ms
from tests.conftest import base_env
from tests.e2e.conftest import cli


def test_serve_refuses_a_missing_or_short_app_secret() -> None:
    for value, reason in (("", "JITSI_APP_SECRET is required"), ("x" * 31, "too short")):
        result = cli(base_env(JITSI_APP_SECRET=value), "serve", "--port", "1")
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and reason in lines[0]


def test_serve_refuses_dev_settings_in_production() -> None:
    result = cli(base_env(APP_ENV="production"), "serve", "--port", "1")
    assert result.returncode != 0
    assert "AUTH_MODE=dev is refused when APP_ENV=production" in result.stderr
    emulator = base_env(
        APP_ENV="production",
        AUTH_MODE="firebase",
        FIREBASE_PROJECT_ID="clinic",
        FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099",
    )
    result = cli(emulator, "serve", "--port", "1")
    assert result.returncode != 0
    assert "FIREBASE_AUTH_EMULATOR_HOST is refused" in result.stderr


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")
    result = cli(env, "serve", "--port", "1")
    assert result.returncode != 0
    assert "videocalls migrate" in result.stderr


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    env = base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}")
    first = cli(env, "migrate")
    assert first.returncode == 0, first.stderr
    assert "0001_initial" in first.stdout
    second = cli(env, "migrate")
    assert second.returncode == 0
    assert second.stdout.startswith("applied 0 migration(s)")


def test_dev_token_prints_only_a_token() -> None:
    env = base_env()
    result = cli(env, "dev-token", "--uid", "demo-doctor")
    assert result.returncode == 0
    token = result.stdout.strip()
    assert "\n" not in token
    claims = jwt.decode(
        token, env["DEV_AUTH_SECRET"], algorithms=["HS256"], audience="videocalls-dev"
    )
    assert claims["sub"] == "demo-doctor"
    refused = cli(
        base_env(AUTH_MODE="firebase", FIREBASE_PROJECT_ID="p"), "dev-token", "--uid", "x"
    )
    assert refused.returncode != 0
    assert "AUTH_MODE=dev" in refused.stderr


def test_import_upserts_everything_or_nothing(env: dict[str, str], tmp_path: Path) -> None:
    good = {
        "users": [{"uid": "d1", "firstName": "D"}, {"uid": "p1", "firstName": "P"}],
        "appointments": [
            {
                "id": "i1",
                "doctorUid": "d1",
                "patientUid": "p1",
                **midday_window(real_now_ms()),
                "status": "CONFIRMED",
            }
        ],
    }
    path = tmp_path / "records.json"
    path.write_text(json.dumps(good))
    for _ in range(2):
        result = cli(env, "import", str(path))
        assert result.returncode == 0, result.stderr
        assert "imported 2 user(s) and 1 appointment(s)" in result.stdout
    assert db.run(lambda: (User.select().count(), Appointment.select().count())) == (2, 1)

    bad = {"users": [{"uid": "d2", "firstName": "D2"}], "appointments": [{"id": "i2"}]}
    path.write_text(json.dumps(bad))
    result = cli(env, "import", str(path))
    assert result.returncode == 1
    assert "nothing written" in result.stderr
    assert db.run(lambda: User.select().where(User.uid == "d2").count()) == 0


def test_seed_demo_loads_a_doctor_two_patients_and_appointments(env: dict[str, str]) -> None:
    result = cli(env, "seed-demo")
    assert result.returncode == 0, result.stderr
    statuses = db.run(lambda: {a.status for a in Appointment.select()})
    assert {"CONFIRMED", "PENDING", "COMPLETED", "CANCELLED"} <= statuses
    assert db.run(lambda: User.select().count()) == 3
