"""Development authentication (`AUTH_MODE=dev`): HS256 tokens signed with DEV_AUTH_SECRET.

Lets a newcomer run and test the service without a Firebase project. The tokens carry the
uid in `sub` like Firebase ID tokens, but their own issuer and audience so that neither kind
can ever be mistaken for the other. Settings refuse this mode when APP_ENV=production.
"""

from __future__ import annotations

import logging
from typing import Final, TypeGuard

import jwt

from service.auth import AuthError, checked_uid
from service.clock import now_s
from service.config import AuthMode, ConfigError, Settings, check_secret

DEV_ISSUER: Final = "videocalls-dev"
DEV_AUDIENCE: Final = "videocalls-dev"
DEV_ALGORITHM: Final = "HS256"
DEFAULT_TTL_SECONDS: Final = 86400
# Same tolerance as the Firebase verifier, so both modes behave alike around expiry.
LEEWAY_SECONDS: Final = 10
# Firebase's own limit on uids; keeping it here means dev uids are valid Firebase uids too.
MAX_UID_LENGTH: Final = 128
_REQUIRED_CLAIMS: Final = ["sub", "iat", "exp", "iss", "aud"]

logger = logging.getLogger(__name__)


def _dev_secret(settings: Settings) -> str:
    # Settings already enforce all of this; checking again keeps a hand-built Settings (tests,
    # scripts) from minting or accepting tokens with a weak secret or in production.
    if settings.auth_mode is not AuthMode.DEV:
        raise ConfigError("dev tokens need AUTH_MODE=dev")
    if settings.is_production:
        raise ConfigError("AUTH_MODE=dev is refused when APP_ENV=production")
    check_secret("DEV_AUTH_SECRET", settings.dev_auth_secret)
    return settings.dev_auth_secret


def _valid_uid(uid: object) -> TypeGuard[str]:
    return isinstance(uid, str) and 0 < len(uid) <= MAX_UID_LENGTH


def mint_dev_token(settings: Settings, uid: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    """A dev ID token for `uid`, valid for `ttl_seconds` (AUTH_MODE=dev only)."""
    secret = _dev_secret(settings)
    if not _valid_uid(uid):
        raise ValueError(f"uid must be 1 to {MAX_UID_LENGTH} characters")
    try:
        checked_uid(uid)
    except AuthError:
        raise ValueError("uid must be letters, digits and _ . : @ - (a user id)") from None
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    now = now_s()
    claims = {
        "sub": uid,
        "iat": now,
        "exp": now + ttl_seconds,
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
    }
    return jwt.encode(claims, secret, algorithm=DEV_ALGORITHM)


def _seconds(claims: dict[str, object], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise AuthError("invalid_token")
    return value


def _check_lifetime(claims: dict[str, object], now: int) -> None:
    """Issued (and `nbf`, if present) no later than `now`, not yet expired; whole seconds, each
    with LEEWAY_SECONDS of tolerance."""
    issued, expires, not_before = (_seconds(claims, k) for k in ("iat", "exp", "nbf"))
    if issued is None or expires is None:
        raise AuthError("invalid_token")
    if max(issued, not_before or issued) > now + LEEWAY_SECONDS:
        raise AuthError("invalid_token")
    if expires <= now - LEEWAY_SECONDS:
        raise AuthError("expired_token")


class DevAuthenticator:
    """Verifies dev tokens: HS256 only, signed with DEV_AUTH_SECRET, every claim required."""

    def __init__(self, settings: Settings) -> None:
        self._secret = _dev_secret(settings)

    def verify(self, token: str) -> str:
        try:
            # A fixed algorithm list is what rejects "none" and algorithm-confusion tokens.
            # Times are checked below against the service's clock, not PyJWT's.
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[DEV_ALGORITHM],
                audience=DEV_AUDIENCE,
                issuer=DEV_ISSUER,
                options={
                    "require": _REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            # The exception type is enough to diagnose; its text could quote token parts.
            logger.info("dev token rejected: %s", type(exc).__name__)
            raise AuthError("invalid_token") from None
        _check_lifetime(claims, now_s())
        uid = claims.get("sub")
        if not _valid_uid(uid):
            raise AuthError("invalid_token")
        return checked_uid(uid)
