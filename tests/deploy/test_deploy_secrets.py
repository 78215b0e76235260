"""docker/gen-secrets.sh: fills in what is missing, keeps what is set, never prints a secret."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from tests.deploy.deploy_support import OWN_BASE, Checkout, make_checkout

GENERATED = (
    "JWT_APP_SECRET",
    "VIDEOCALLS_EVENTS_SECRET",
    "VIDEOCALLS_ADMIN_API_KEY",
    "VIDEOCALLS_WEBHOOK_SECRET",
    "VIDEOCALLS_POSTGRES_PASSWORD",
)


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    return make_checkout(tmp_path, OWN_BASE)


def run_ok(checkout: Checkout, *args: str) -> str:
    result = checkout.gen_secrets(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_generates_every_secret_without_printing_one(checkout: Checkout) -> None:
    output = run_ok(checkout)
    env = checkout.env()
    assert env["JWT_APP_ID"] == "videocalls"
    assert re.fullmatch(r"[0-9a-f]{64}", env["JWT_APP_SECRET"])
    assert re.fullmatch(r"[0-9a-f]{64}", env["VIDEOCALLS_ADMIN_API_KEY"])
    assert re.fullmatch(r"[0-9a-f]{32}", env["VIDEOCALLS_POSTGRES_PASSWORD"])
    events = env["VIDEOCALLS_EVENTS_SECRET"]
    assert events.startswith("whsec_")
    assert len(base64.b64decode(events.removeprefix("whsec_"), validate=True)) == 32
    hooks = env["VIDEOCALLS_WEBHOOK_SECRET"]
    assert len(base64.b64decode(hooks.removeprefix("whsec_"), validate=True)) == 32
    for name in GENERATED:
        assert name in output
        assert env[name] not in output
        assert env[name].removeprefix("whsec_") not in output
    assert len({env[name] for name in GENERATED}) == len(GENERATED), "no value reused"


def test_second_run_changes_nothing(checkout: Checkout) -> None:
    run_ok(checkout)
    before = checkout.env_file.read_text()
    assert "nothing to do" in run_ok(checkout)
    assert checkout.env_file.read_text() == before
    assert (checkout.root / ".env.bak").read_text() == before


def test_keeps_values_the_operator_set(checkout: Checkout) -> None:
    own_secret = "a-secret-the-operator-chose-of-48-characters-xyz"
    checkout.set("JWT_APP_ID", "clinic")
    checkout.set("JWT_APP_SECRET", f'"{own_secret}"')
    run_ok(checkout)
    env = checkout.env()
    assert env["JWT_APP_ID"] == "clinic"
    assert env["JWT_APP_SECRET"] == own_secret
    assert len(re.findall("^JWT_APP_SECRET=", checkout.env_file.read_text(), re.M)) == 1


def test_empty_assignment_is_filled_in_place(checkout: Checkout) -> None:
    checkout.set("VIDEOCALLS_ADMIN_API_KEY", "")
    run_ok(checkout)
    text = checkout.env_file.read_text()
    assert len(re.findall("^VIDEOCALLS_ADMIN_API_KEY=", text, re.M)) == 1
    assert checkout.env()["VIDEOCALLS_ADMIN_API_KEY"]


def test_force_rotates_the_secrets_but_not_the_database_password(checkout: Checkout) -> None:
    run_ok(checkout)
    before = checkout.env()
    run_ok(checkout, "--force")
    after = checkout.env()
    for name in ("JWT_APP_SECRET", "VIDEOCALLS_EVENTS_SECRET", "VIDEOCALLS_ADMIN_API_KEY"):
        assert after[name] != before[name], name
    assert after["VIDEOCALLS_POSTGRES_PASSWORD"] == before["VIDEOCALLS_POSTGRES_PASSWORD"]
    # The clinic's receiver holds the webhook secret: a rotation is listed by hand.
    assert after["VIDEOCALLS_WEBHOOK_SECRET"] == before["VIDEOCALLS_WEBHOOK_SECRET"]
    assert after["JWT_APP_ID"] == before["JWT_APP_ID"]


def test_postgres_option_adds_the_profile_once(checkout: Checkout) -> None:
    checkout.set("COMPOSE_PROFILES", "monitoring")
    run_ok(checkout, "--postgres")
    run_ok(checkout, "--postgres")
    env = checkout.env()
    assert env["COMPOSE_PROFILES"] == "monitoring,postgres"
    password = env["VIDEOCALLS_POSTGRES_PASSWORD"]
    assert env["VIDEOCALLS_DATABASE_URL"] == (
        f"postgresql://videocalls:{password}@postgres.meet.jitsi:5432/videocalls"
    )


def test_warns_about_a_short_jwt_secret(checkout: Checkout) -> None:
    checkout.set("JWT_APP_SECRET", "my_jitsi_app_secret")
    result = checkout.gen_secrets()
    assert result.returncode == 0
    assert "JWT_APP_SECRET is shorter than 32" in result.stderr
    assert "my_jitsi_app_secret" not in result.stdout + result.stderr


def test_refuses_a_missing_env_file(tmp_path: Path, checkout: Checkout) -> None:
    checkout.env_file.unlink()
    result = checkout.gen_secrets()
    assert result.returncode == 1
    assert "env.example" in result.stderr
    assert not checkout.env_file.exists()
