"""The environment of a service process (or of `load_settings`) in tests and benches: every
secret fresh and random, the rest fixed; `overrides` win."""

from __future__ import annotations

import base64
import secrets


def base_env(**overrides: str) -> dict[str, str]:
    env = {
        "APP_ENV": "test",
        "AUTH_MODE": "dev",
        "DEV_AUTH_SECRET": secrets.token_hex(32),
        "JITSI_APP_ID": "clinic-app",
        "JITSI_APP_SECRET": secrets.token_hex(32),
        "JITSI_DOMAIN": "meet.example.test",
        "ADMIN_API_KEY": secrets.token_hex(32),
        "PROSODY_EVENTS_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "EVENT_SYNC_TOKEN": secrets.token_hex(32),
    }
    env.update(overrides)
    return env
