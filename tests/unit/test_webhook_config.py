"""WEBHOOK_* settings: defaults, rotation, and a one-line refusal for every unsafe value."""

from __future__ import annotations

import base64
import secrets

import pytest

from harness.env import base_env
from service.config import DEFAULT_WEBHOOK_RETRY_DELAYS, ConfigError, load_settings


def whsec(n: int = 32) -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(n)).decode()


def test_unset_means_no_webhooks() -> None:
    hooks = load_settings(base_env()).webhooks
    assert not hooks.enabled
    assert (
        hooks.retry_delays
        == DEFAULT_WEBHOOK_RETRY_DELAYS
        == (5, 300, 1800, 7200, 18000, 36000, 36000)
    )
    assert hooks.timeout == 10


def test_a_rotation_signs_with_every_secret() -> None:
    old, new = whsec(), whsec(24)
    hooks = load_settings(
        base_env(
            WEBHOOK_URL="https://clinic.example.test/hooks",
            WEBHOOK_SECRET=f"{old} {new}",
            WEBHOOK_RETRY_DELAYS="1, 2.5,60",
            WEBHOOK_TIMEOUT="3",
        )
    ).webhooks
    assert hooks.enabled and hooks.secrets == (old, new)
    assert hooks.retry_delays == (1, 2.5, 60) and hooks.timeout == 3
    assert old not in repr(hooks)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"WEBHOOK_URL": "https://clinic.example.test/h"}, "WEBHOOK_SECRET is required"),
        ({"WEBHOOK_SECRET": "plain"}, "must start with whsec_"),
        ({"WEBHOOK_SECRET": "whsec_" + "!" * 40}, "not base64"),
        ({"WEBHOOK_SECRET": whsec(16)}, "too short"),
        ({"WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"a" * 32).decode()}, "too weak"),
        ({"WEBHOOK_URL": "ftp://clinic.example.test", "WEBHOOK_SECRET": whsec()}, "URL"),
        ({"WEBHOOK_URL": "clinic.example.test/h", "WEBHOOK_SECRET": whsec()}, "URL"),
        (
            {"WEBHOOK_URL": "https://u:p@clinic.example.test/h", "WEBHOOK_SECRET": whsec()},
            "credentials",
        ),
        ({"WEBHOOK_RETRY_DELAYS": "5,soon"}, "WEBHOOK_RETRY_DELAYS must be seconds"),
        ({"WEBHOOK_RETRY_DELAYS": "5,-1"}, "at least 0"),
        ({"WEBHOOK_RETRY_DELAYS": "nan"}, "WEBHOOK_RETRY_DELAYS"),
        ({"WEBHOOK_TIMEOUT": "0"}, "WEBHOOK_TIMEOUT must be at least"),
    ],
)
def test_refusals(change: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_settings(base_env(**change))


def test_production_needs_https() -> None:
    env = base_env(
        APP_ENV="production",
        AUTH_MODE="firebase",
        FIREBASE_PROJECT_ID="clinic-prod",
        WEBHOOK_SECRET=whsec(),
        WEBHOOK_URL="http://clinic.example.test/hooks",
    )
    with pytest.raises(ConfigError, match="https://"):
        load_settings(env)
    env["WEBHOOK_URL"] = "https://clinic.example.test/hooks"
    assert load_settings(env).webhooks.enabled
