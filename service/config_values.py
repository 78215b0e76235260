"""How each kind of setting is read from the environment and checked (service/config.py
builds the settings from these): booleans, whole numbers, seconds, lists, and secrets, which
are refused when missing, short or guessable. Every refusal is one ConfigError line."""

from __future__ import annotations

import math
from collections.abc import Mapping

from service.receiver.signing import SECRET_PREFIX, decode_secret

MIN_SECRET_BYTES = 32
# Standard Webhooks keys are the base64 after `whsec_`; 24 bytes (192 bits) is the size
# common generators (svix, standardwebhooks) make. Both kinds of secret (PROSODY_EVENTS_SECRET,
# WEBHOOK_SECRET) are held to it.
MIN_WEBHOOK_KEY_BYTES = 24
# A 32-byte secret of a handful of distinct characters ("aaaa...", "changeme" repeated) is
# long but guessable; real generated secrets have far more variety.
MIN_DISTINCT_CHARS = 10


class ConfigError(Exception):
    """A setting is missing or invalid; the message is the one-line reason shown to operators."""


def webhook_secret(item: str) -> None:
    whsec_encoded("WEBHOOK_SECRET", item)
    key = whsec_key(item, f"WEBHOOK_SECRET is not base64 after {SECRET_PREFIX}")
    if len(key) < MIN_WEBHOOK_KEY_BYTES:
        raise ConfigError(
            f"WEBHOOK_SECRET is too short: use at least {MIN_WEBHOOK_KEY_BYTES} random bytes "
            f"({SECRET_PREFIX} + openssl rand -base64 32)"
        )
    if len(set(key)) < MIN_DISTINCT_CHARS:
        raise ConfigError("WEBHOOK_SECRET is too weak: generate it randomly")


def seconds(name: str, raw: str, minimum: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g} seconds, got {raw!r}")
    return value


def optional_seconds(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    return seconds(name, raw, minimum) if raw else default


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def split_list(raw: str, sep: str | None = ",") -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(sep) if item.strip())


def check_secret(name: str, value: str) -> None:
    """Refuse missing, short or low-variety secrets (the reason names the variable only)."""
    if not value:
        raise ConfigError(f"{name} is required (at least {MIN_SECRET_BYTES} random bytes)")
    # Secrets travel in HTTP headers and HMAC keys as ASCII: a space, a control character
    # or a non-ASCII letter is a copy-paste accident, and a header could never carry it.
    if not (value.isascii() and value.isprintable()) or any(c.isspace() for c in value):
        raise ConfigError(f"{name} must be printable ASCII without spaces")
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"{name} is too short: use at least {MIN_SECRET_BYTES} random bytes")
    if len(set(value)) < MIN_DISTINCT_CHARS:
        raise ConfigError(f"{name} is too weak: generate it randomly (e.g. openssl rand -hex 32)")


def whsec_encoded(name: str, value: str) -> str:
    """The part after `whsec_` of a Standard Webhooks secret: the one check of the prefix."""
    if not value.startswith(SECRET_PREFIX):
        raise ConfigError(f"{name} entries must start with {SECRET_PREFIX}")
    return value.removeprefix(SECRET_PREFIX)


def whsec_key(value: str, not_base64: str) -> bytes:
    """The key of a secret whose prefix was checked, decoded as the signer decodes it."""
    try:
        return decode_secret(value)
    except ValueError:
        raise ConfigError(not_base64) from None


def check_webhook_secret(name: str, value: str) -> None:
    """A Standard Webhooks secret: `whsec_` + base64 of at least 24 random bytes."""
    check_secret(name, whsec_encoded(name, value))
    key = whsec_key(value, f"{name}: the part after {SECRET_PREFIX} is not valid base64")
    if len(key) < MIN_WEBHOOK_KEY_BYTES:
        raise ConfigError(
            f"{name} is too short: the part after {SECRET_PREFIX} must decode to at least "
            f"{MIN_WEBHOOK_KEY_BYTES} bytes"
        )
