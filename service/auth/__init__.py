"""Who is calling: turn an `Authorization: Bearer <ID token>` header into a Firebase uid.

Two verifiers share one interface: Firebase ID tokens (production) and HS256 dev tokens
(`AUTH_MODE=dev`, refused in production by the settings). Verification is synchronous and may
touch the network (Google's public certificates); the web layer runs it in a worker thread.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

from service.config import AuthMode, Settings
from service.fields import ID_PATTERN, MAX_ID_CHARS

AuthErrorCode = Literal[
    "missing_token",
    "invalid_token",
    "expired_token",
    "revoked_token",
    "user_disabled",
    "auth_unavailable",
]

# Client-safe texts: they never echo the token or the verifier's own diagnostic, which can
# contain the token itself (google-auth puts malformed tokens into its error messages).
_MESSAGES: Final[dict[AuthErrorCode, str]] = {
    "missing_token": "Missing or malformed Authorization header: expected 'Bearer <token>'",
    "invalid_token": "Invalid authentication token",
    "expired_token": "Authentication token has expired",
    "revoked_token": "Authentication token has been revoked",
    "user_disabled": "This account has been disabled",
    "auth_unavailable": "Authentication is temporarily unavailable, try again shortly",
}
# A signed token can still carry a uid no user of this service can have (a NUL, a lone
# surrogate, a control character, over MAX_ID_CHARS characters): it is refused like a bad signature.
INVALID_UID_MESSAGE: Final = (
    f"Authentication token's user id is not valid here: 1-{MAX_ID_CHARS} of A-Z a-z 0-9 _ . : @ -"
)

# Firebase ID tokens are about 1 KiB (custom claims are capped at 1000 bytes); anything far
# larger is not a token worth parsing.
MAX_TOKEN_LENGTH: Final = 8192


class AuthError(Exception):
    """The caller could not be authenticated; `code` is machine-readable, `message` client-safe.

    `auth_unavailable` is the server's fault (Google's certificates could not be fetched), so it
    maps to 503; every other code means the client must sign in again (401).
    """

    def __init__(self, code: AuthErrorCode, message: str | None = None) -> None:
        self.code: AuthErrorCode = code
        self.message: str = message if message is not None else _MESSAGES[code]
        super().__init__(f"{code}: {self.message}")

    @property
    def http_status(self) -> int:
        return 503 if self.code == "auth_unavailable" else 401


class Authenticator(Protocol):
    """Verifies a bearer token and returns the caller's Firebase uid, or raises AuthError."""

    def verify(self, token: str) -> str: ...


def bearer_token(authorization_header: str | None) -> str:
    """Extract the token from an `Authorization: Bearer <token>` header value."""
    if not authorization_header:
        raise AuthError("missing_token")
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    # The scheme is case-insensitive (RFC 9110 section 11.1); a token never contains spaces.
    if scheme.lower() != "bearer" or not token or any(ch.isspace() for ch in token):
        raise AuthError("missing_token")
    if len(token) > MAX_TOKEN_LENGTH:
        raise AuthError("invalid_token")
    return token


def checked_uid(uid: object) -> str:
    """`uid` if it can name a user (the alphabet and length every user id is imported with,
    service/fields.py), else AuthError `invalid_token`: checked at the edge, before any query."""
    if not isinstance(uid, str) or not ID_PATTERN.fullmatch(uid):
        raise AuthError("invalid_token", INVALID_UID_MESSAGE)
    return uid


def build_authenticator(settings: Settings) -> Authenticator:
    """The verifier for `settings.auth_mode`; configuration problems raise ConfigError."""
    # Imported here so dev mode never loads firebase-admin, and the submodules can import
    # AuthError from this package without a cycle.
    if settings.auth_mode is AuthMode.DEV:
        from service.auth.dev import DevAuthenticator

        return DevAuthenticator(settings)
    from service.auth.firebase import FirebaseAuthenticator

    return FirebaseAuthenticator(settings)


__all__ = [
    "MAX_TOKEN_LENGTH",
    "AuthError",
    "AuthErrorCode",
    "Authenticator",
    "bearer_token",
    "build_authenticator",
    "checked_uid",
]
