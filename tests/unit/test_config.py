"""Settings: defaults, and a clear one-line refusal for every unsafe configuration."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from pathlib import Path

import pytest

from harness.env import base_env
from service import operators
from service.config import AuthMode, ConfigError, load_settings
from service.domain.model import PresenceSource


def test_defaults() -> None:
    settings = load_settings(base_env())
    assert settings.database_url == "sqlite:///data/videocalls.db"
    assert settings.jitsi_token_subject == "meet.example.test"
    assert settings.jitsi_token_ttl == 10800
    assert settings.jitsi_token_include_email is False
    assert settings.call_end_grace == 120
    assert settings.no_show_grace == 900
    assert settings.max_call_duration == 14400
    assert settings.auth_mode is AuthMode.DEV  # base_env picks dev; the real default follows


def test_firebase_is_the_default_auth_mode() -> None:
    env = base_env(FIREBASE_PROJECT_ID="clinic-prod")
    del env["AUTH_MODE"]
    assert load_settings(env).auth_mode is AuthMode.FIREBASE


def test_secrets_never_appear_in_repr() -> None:
    settings = load_settings(base_env())
    assert settings.jitsi_app_secret not in repr(settings)
    assert settings.admin_api_key not in repr(settings)


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"JITSI_APP_SECRET": ""}, "JITSI_APP_SECRET is required"),
        ({"JITSI_APP_SECRET": "short"}, "JITSI_APP_SECRET is too short"),
        ({"JITSI_APP_SECRET": "ab" * 20}, "JITSI_APP_SECRET is too weak"),
        ({"JITSI_APP_ID": ""}, "JITSI_APP_ID is required"),
        ({"JITSI_DOMAIN": ""}, "JITSI_DOMAIN is required"),
        ({"JITSI_TOKEN_TTL": "soon"}, "JITSI_TOKEN_TTL must be a whole number"),
        ({"AUTH_MODE": "magic"}, "AUTH_MODE must be firebase or dev"),
        ({"DEV_AUTH_SECRET": "x"}, "DEV_AUTH_SECRET is too short"),
        ({"APP_ENV": "production"}, "AUTH_MODE=dev is refused when APP_ENV=production"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must start with"),
        ({"PROSODY_EVENTS_SECRET": "plain-secret-without-prefix-0123456789"}, "whsec_"),
        ({"ADMIN_API_KEY": "admin"}, "ADMIN_API_KEY is too short"),
        ({"JITSI_DOCTOR_FEATURES": "teleport"}, "unknown features"),
        # Regression: not base64 after whsec_ passed start-up, then every event was a 500.
        (
            {"PROSODY_EVENTS_SECRET": "whsec_" + "not-base64!" + "Zq9x" * 8},
            "PROSODY_EVENTS_SECRET: the part after whsec_ is not valid base64",
        ),
        (
            # 44 base64 characters of which only 18 bytes decode: long text, short key.
            {"PROSODY_EVENTS_SECRET": "whsec_" + "AbCdEfGhIjKlMnOpQrStUvWx" + "=" * 20},
            "must decode to at least 24 bytes",
        ),
        ({"ADMIN_API_KEY": "ä" + secrets.token_hex(32)}, "ADMIN_API_KEY must be printable ASCII"),
        ({"EVENT_SYNC_TOKEN": secrets.token_hex(16) + " " + secrets.token_hex(16)}, "EVENT_SYNC"),
        ({"JITSI_APP_SECRET": secrets.token_hex(32) + "\t"}, "JITSI_APP_SECRET must be"),
    ],
)
def test_refusals(change: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings(base_env(**change))
    message = str(excinfo.value)
    assert reason in message
    assert "\n" not in message


def test_production_refuses_the_firebase_emulator() -> None:
    env = base_env(
        APP_ENV="production",
        AUTH_MODE="firebase",
        FIREBASE_PROJECT_ID="p",
        FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099",
    )
    with pytest.raises(ConfigError, match="FIREBASE_AUTH_EMULATOR_HOST is refused"):
        load_settings(env)


def test_firebase_needs_a_project(tmp_path: Path) -> None:
    env = base_env(AUTH_MODE="firebase")
    with pytest.raises(ConfigError, match="FIREBASE_PROJECT_ID is required"):
        load_settings(env)
    credentials = tmp_path / "sa.json"
    credentials.write_text(json.dumps({"type": "service_account", "project_id": "from-file"}))
    env["GOOGLE_APPLICATION_CREDENTIALS"] = str(credentials)
    assert load_settings(env).firebase_project_id == "from-file"


def test_secret_rotation_list() -> None:
    first, second = base_env()["PROSODY_EVENTS_SECRET"], base_env()["PROSODY_EVENTS_SECRET"]
    settings = load_settings(base_env(PROSODY_EVENTS_SECRET=f"{first} {second}"))
    assert settings.prosody_events_secrets == (first, second)


def test_env_example_states_the_service_defaults() -> None:
    """docker/env.example's commented `#VIDEOCALLS_X=value` lines claim the default of what
    the overlay passes through empty; each claim must be what the service really uses."""
    root = Path(__file__).resolve().parents[2]
    compose = (root / "docker-compose.jitsi.yml").read_text()
    passed = dict(re.findall(r"- ([A-Z_]+)=\$\{(VIDEOCALLS_[A-Z_]+):-\}", compose))
    claims = dict(
        re.findall(
            r"^#(VIDEOCALLS_[A-Z_]+)=(.*)$", (root / "docker" / "env.example").read_text(), re.M
        )
    )
    examples = {"CORS_ORIGINS", "DATABASE_URL", "WEBHOOK_URL"}  # examples, not defaults
    checked = 0
    env = base_env()
    baseline = load_settings(env)
    for name, variable in passed.items():
        if variable in claims and name not in examples:
            assert load_settings({**env, name: claims[variable]}) == baseline, variable
            checked += 1
    assert checked >= 6


# --- the stock event_sync receiver --------------------------------------------------------


def test_event_sync_defaults() -> None:
    settings = load_settings(base_env())
    assert [str(n) for n in settings.event_sync_allowed_networks] == [
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    ]
    assert settings.event_sync_host == "muc.meet.jitsi"  # docker-jitsi-meet's XMPP_MUC_DOMAIN
    assert settings.event_sync_max_age == 120


def test_event_sync_settings() -> None:
    settings = load_settings(
        base_env(
            EVENT_SYNC_ALLOWED_NETWORKS=" 172.18.0.0/16, 10.1.2.3 ,fd00::/8",
            EVENT_SYNC_HOST="Conference.Meet.Example.COM",
            EVENT_SYNC_MAX_AGE="30",
        )
    )
    assert [str(n) for n in settings.event_sync_allowed_networks] == [
        "172.18.0.0/16",
        "10.1.2.3/32",
        "fd00::/8",
    ]
    assert settings.event_sync_host == "conference.meet.example.com"
    assert settings.event_sync_max_age == 30


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"EVENT_SYNC_ALLOWED_NETWORKS": "10.0.0.0/33"}, "'10.0.0.0/33' is not a network"),
        ({"EVENT_SYNC_ALLOWED_NETWORKS": "172.16.0.1/12"}, "'172.16.0.1/12' is not a network"),
        ({"EVENT_SYNC_ALLOWED_NETWORKS": "127.0.0.0/8,prosody"}, "'prosody' is not a network"),
        ({"EVENT_SYNC_ALLOWED_NETWORKS": "10.0.0.0/8;192.168.0.0/16"}, "CIDR notation"),
        ({"EVENT_SYNC_HOST": "https://muc.meet.jitsi"}, "EVENT_SYNC_HOST must be"),
        ({"EVENT_SYNC_HOST": "muc..meet.jitsi"}, "EVENT_SYNC_HOST must be"),
        ({"EVENT_SYNC_HOST": "room@muc.meet.jitsi"}, "EVENT_SYNC_HOST must be"),
        ({"EVENT_SYNC_MAX_AGE": "0"}, "EVENT_SYNC_MAX_AGE must be at least 1"),
        ({"EVENT_SYNC_MAX_AGE": "2m"}, "EVENT_SYNC_MAX_AGE must be a whole number"),
    ],
)
def test_event_sync_refusals(change: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(reason)):
        load_settings(base_env(**change))


def test_a_bad_network_stops_the_service_with_one_line(tmp_path: Path) -> None:
    """`videocalls serve` refuses to start on a bad CIDR, saying which entry and why."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        **base_env(DATABASE_URL=f"sqlite:///{tmp_path}/v.db"),
        "EVENT_SYNC_ALLOWED_NETWORKS": "10.0.0.0/8,300.1.2.3/32",
    }
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "configuration error: EVENT_SYNC_ALLOWED_NETWORKS: '300.1.2.3/32'" in result.stderr


def test_readme_configuration_table_lists_every_setting() -> None:
    """Each variable service/config.py reads has a row (name, default, what it does)."""
    root = Path(__file__).resolve().parents[2]
    read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', (root / "service" / "config.py").read_text()))
    read -= {"DEBUG", "INFO", "WARNING", "ERROR"}  # LOG_LEVEL's values
    readme = (root / "README.md").read_text()
    assert sorted(n for n in read if f"| `{n}` |" not in readme) == []
    for name in ("EVENT_SYNC_ALLOWED_NETWORKS", "EVENT_SYNC_HOST", "EVENT_SYNC_MAX_AGE"):
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"Example: `{name}=" in row, name
        example = row.split(f"Example: `{name}=", 1)[1].split("`", 1)[0]
        load_settings(base_env(**{name: example}))  # the example works


# --- where presence comes from (PRESENCE_SOURCE) ---------------------------------------------


def test_a_prosody_receiver_makes_the_server_the_presence_source() -> None:
    both = load_settings(base_env())
    assert both.presence_source is PresenceSource.SERVER
    assert both.server_tracks_presence and not both.presence_source_explicit
    signed_only = load_settings(base_env(EVENT_SYNC_TOKEN=""))
    event_sync_only = load_settings(base_env(PROSODY_EVENTS_SECRET=""))
    assert signed_only.presence_source is event_sync_only.presence_source is PresenceSource.SERVER


def test_without_a_receiver_clients_report_presence_outside_production() -> None:
    settings = load_settings(base_env(PROSODY_EVENTS_SECRET="", EVENT_SYNC_TOKEN=""))
    assert settings.presence_source is PresenceSource.CLIENTS
    assert not settings.server_tracks_presence


def test_clients_may_be_chosen_beside_a_receiver() -> None:
    settings = load_settings(base_env(PRESENCE_SOURCE="clients"))
    assert settings.presence_source is PresenceSource.CLIENTS
    assert settings.presence_source_explicit


def _production(**change: str) -> dict[str, str]:
    env = base_env(APP_ENV="production", AUTH_MODE="firebase", FIREBASE_PROJECT_ID="clinic")
    env.update(change)
    return env


def test_production_never_falls_back_to_browsers_by_default() -> None:
    with pytest.raises(ConfigError, match="PRESENCE_SOURCE=clients"):
        load_settings(_production(PROSODY_EVENTS_SECRET="", EVENT_SYNC_TOKEN=""))
    said = load_settings(
        _production(PROSODY_EVENTS_SECRET="", EVENT_SYNC_TOKEN="", PRESENCE_SOURCE="clients")
    )
    assert said.presence_source is PresenceSource.CLIENTS
    assert load_settings(_production()).presence_source is PresenceSource.SERVER


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"PRESENCE_SOURCE": "browsers"}, "PRESENCE_SOURCE must be server or clients"),
        (
            {"PRESENCE_SOURCE": "server", "PROSODY_EVENTS_SECRET": "", "EVENT_SYNC_TOKEN": ""},
            "needs a Prosody receiver",
        ),
    ],
)
def test_presence_source_refusals(change: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_settings(base_env(**change))


# --- the audit trail's signing key ------------------------------------------------------------


def test_a_malformed_or_weak_audit_signing_key_stops_the_start() -> None:
    for bad, why in (
        ("not-hex", "is not hex"),
        ("ab" * 16, "must be 32 bytes"),
        ("00" * 32, "is too weak"),
    ):
        with pytest.raises(ConfigError, match=f"AUDIT_SIGNING_KEY {why}") as caught:
            load_settings(base_env(AUDIT_SIGNING_KEY=bad))
        assert bad not in str(caught.value) or bad == "not-hex"
    key = os.urandom(32).hex()
    settings = load_settings(base_env(AUDIT_SIGNING_KEY=key, AUDIT_CHECKPOINT_INTERVAL="60"))
    assert (settings.audit_signing_key, settings.audit_checkpoint_interval) == (key, 60)
    assert key not in repr(settings)
    with pytest.raises(ConfigError, match="AUDIT_TRUSTED_KEYS"):
        load_settings(base_env(AUDIT_TRUSTED_KEYS="ab" * 31))


# --- named operators (ADMIN_API_KEYS) ---------------------------------------------------------


def test_named_admin_keys_are_read_as_hashes_and_admin_api_key_is_admin() -> None:
    alice, reception = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    entries = (
        f"alice:rw:{hashlib.sha256(alice.encode()).hexdigest()}, "
        f"reception:ro:{hashlib.sha256(reception.encode()).hexdigest()}"
    )
    settings = load_settings(base_env(ADMIN_API_KEYS=entries))
    legacy = settings.admin_api_key
    assert operators.identify(settings.admin_keys, alice) == operators.Operator("alice", True)
    assert operators.identify(settings.admin_keys, reception) == operators.Operator(
        "reception", False
    )
    assert operators.identify(settings.admin_keys, legacy) == operators.Operator("admin", True)
    assert operators.identify(settings.admin_keys, alice + "x") is None
    # The settings hold no usable key of a named operator.
    assert alice not in repr(settings) and alice not in entries


def test_malformed_admin_keys_stop_the_start() -> None:
    good = "ab" * 32
    for bad, why in (
        (f"Alice:rw:{good}", "entry 1: the name"),
        (f"alice:admin:{good}", "access must be rw or ro"),
        ("alice:rw:secret-in-clear", "SHA-256 must be 64"),
        (f"alice:rw:{good} bob:ro:{good}", "same key"),
        (f"admin:rw:{'cd' * 32}", "names must be unique"),
    ):
        with pytest.raises(ConfigError, match=f"ADMIN_API_KEYS: .*{why}") as caught:
            load_settings(base_env(ADMIN_API_KEYS=bad))
        assert good not in str(caught.value)
