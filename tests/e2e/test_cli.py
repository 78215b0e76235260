"""The `videocalls` command as operators run it: refusals, migrate, import, dev-token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jwt

from harness.clock import midday_window, real_now_ms
from harness.env import base_env
from service import operators
from service.config import load_settings
from service.store import uow, video_calls
from service.store.models import Appointment, User, VideoCall
from tests.conftest import repo_root
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
    assert uow.run(lambda: (User.select().count(), Appointment.select().count())) == (2, 1)

    bad = {"users": [{"uid": "d2", "firstName": "D2"}], "appointments": [{"id": "i2"}]}
    path.write_text(json.dumps(bad))
    result = cli(env, "import", str(path))
    assert result.returncode == 1
    assert "nothing written" in result.stderr
    assert uow.run(lambda: User.select().where(User.uid == "d2").count()) == 0


def test_seed_demo_loads_a_doctor_two_patients_and_appointments(env: dict[str, str]) -> None:
    result = cli(env, "seed-demo")
    assert result.returncode == 0, result.stderr
    statuses = uow.run(lambda: {a.status for a in Appointment.select()})
    assert {"CONFIRMED", "PENDING", "COMPLETED", "CANCELLED"} <= statuses
    assert uow.run(lambda: User.select().count()) == 3


def test_import_refuses_an_appointment_for_an_unknown_user(
    env: dict[str, str], tmp_path: Path
) -> None:
    document = {
        "users": [{"uid": "d3", "firstName": "D"}],
        "appointments": [
            {
                "id": "i3",
                "doctorUid": "d3",
                "patientUid": "never-created",
                **midday_window(real_now_ms()),
                "status": "CONFIRMED",
            }
        ],
    }
    path = tmp_path / "records.json"
    path.write_text(json.dumps(document))
    result = cli(env, "import", str(path))
    assert result.returncode == 1
    assert "Unknown user never-created" in result.stderr
    assert uow.run(lambda: User.select().where(User.uid == "d3").count()) == 0


def _dev_env_file(tmp_path: Path, dev_secret: str) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    source = base_env(APP_ENV="development", DEV_AUTH_SECRET=dev_secret)
    (data / "dev.env").write_text("".join(f"{k}={v}\n" for k, v in source.items()))
    return data


def test_dev_token_reads_the_dev_env_of_make_run_itself(tmp_path: Path) -> None:
    secret = base_env()["DEV_AUTH_SECRET"]
    data = _dev_env_file(tmp_path, secret)
    # A shell where nothing was sourced: only where `make run` keeps its file.
    bare = {k: v for k, v in os.environ.items() if k.isupper() and "JITSI" not in k}
    for name in ("APP_ENV", "AUTH_MODE", "DEV_AUTH_SECRET", "DATABASE_URL", "ADMIN_API_KEY"):
        bare.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "service", "dev-token", "--uid", "demo-doctor"],
        env={**bare, "DATA_DIR": str(data)},
        cwd=repo_root(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(
        result.stdout.strip(), secret, algorithms=["HS256"], audience="videocalls-dev"
    )
    assert claims["sub"] == "demo-doctor"


def test_dev_token_ignores_the_file_outside_development(tmp_path: Path) -> None:
    data = _dev_env_file(tmp_path, base_env()["DEV_AUTH_SECRET"])
    env = base_env(
        APP_ENV="production", AUTH_MODE="firebase", FIREBASE_PROJECT_ID="p", DATA_DIR=str(data)
    )
    result = cli(env, "dev-token", "--uid", "x")
    assert result.returncode != 0
    assert "AUTH_MODE=dev" in result.stderr


def test_seed_demo_reset_puts_the_demo_back_as_new(env: dict[str, str]) -> None:
    assert cli(env, "seed-demo").returncode == 0
    appointment = uow.run(lambda: Appointment.get_by_id("demo-appt-1"))
    uow.run(
        lambda: video_calls.create_call_if_missing(
            appointment, "appointment_demo-appt-1", real_now_ms()
        )
    )
    uow.run(
        lambda: (
            VideoCall.update(status="COMPLETED")
            .where(VideoCall.appointment_id == "demo-appt-1")
            .execute()
        )
    )
    plain = cli(env, "seed-demo")
    assert plain.returncode == 0
    assert uow.run(lambda: VideoCall.select().count()) == 1  # seeding alone keeps the call
    reset = cli(env, "seed-demo", "--reset")
    assert reset.returncode == 0, reset.stderr
    assert "1 demo call(s) removed" in reset.stdout
    assert uow.run(lambda: VideoCall.select().count()) == 0
    assert uow.run(lambda: Appointment.get_by_id("demo-appt-1").status) == "CONFIRMED"
    production = base_env(
        DATABASE_URL=env["DATABASE_URL"],
        APP_ENV="production",
        AUTH_MODE="firebase",
        FIREBASE_PROJECT_ID="p",
    )
    refused = cli(production, "seed-demo", "--reset")
    assert refused.returncode == 2
    assert "refused" in refused.stderr


# Someone with the owner's rights removes the newest entry and every stored checkpoint.
TRUNCATE = """
import sys
from service.store import audit_guard, db, uow
db.bind(db.make_database(sys.argv[1], 2))
with uow.read(), audit_guard.lifted():
    db.current().execute_sql("DELETE FROM audit_events WHERE seq = 2")
    db.current().execute_sql("DELETE FROM audit_checkpoints")
"""


def test_audit_checkpoint_and_verify_catch_a_truncated_trail(tmp_path: Path) -> None:
    """A checkpoint printed (as the log and the webhook carry it), the trail's newest entries
    removed past the guard, the stored checkpoints removed too: `audit verify` with the copy
    kept outside names the removal; before it, the untouched trail verifies."""
    env = base_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}", AUDIT_SIGNING_KEY=os.urandom(32).hex()
    )
    assert cli(env, "migrate").returncode == 0
    users = tmp_path / "users.json"
    people = [{"uid": u, "firstName": "F", "lastName": "L"} for u in ("d1", "p1")]
    users.write_text(json.dumps({"users": people}))
    for _ in range(2):  # one audit entry each
        assert cli(env, "import", str(users)).returncode == 0
    taken = cli(env, "audit", "checkpoint")
    assert taken.returncode == 0, taken.stderr
    outside = tmp_path / "checkpoints.jsonl"
    outside.write_text(taken.stdout)
    assert json.loads(taken.stdout)["entries"] == 2

    verified = cli(env, "audit", "verify", "--checkpoints", str(outside))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verified: 2 entries" in verified.stdout and "2 checkpoint(s)" in verified.stdout

    subprocess.run(
        [sys.executable, "-c", TRUNCATE, env["DATABASE_URL"]], cwd=repo_root(), check=True
    )
    alone = cli(env, "audit", "verify")
    assert alone.returncode == 0  # without the copy kept outside, nothing shows
    caught = cli(env, "audit", "verify", "--checkpoints", str(outside))
    assert caught.returncode == 1
    assert "does NOT verify at position 2" in caught.stdout
    assert "removed after it was taken" in caught.stdout


def test_admin_key_prints_a_key_and_the_entry_that_admits_it() -> None:
    made = cli(base_env(), "admin-key", "reception", "--read-only")
    assert made.returncode == 0, made.stderr
    lines = dict(line.split(": ", 1) for line in made.stdout.strip().splitlines())
    key, entry = lines["key (give it to reception, then forget it)"], lines["ADMIN_API_KEYS entry"]
    assert entry.startswith("reception:ro:") and key not in entry
    settings = load_settings(base_env(ADMIN_API_KEYS=entry))
    assert operators.identify(settings.admin_keys, key) == operators.Operator("reception", False)
    assert cli(base_env(), "admin-key", "Not A Name").returncode == 2
