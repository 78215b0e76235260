"""Firebase authentication: verify Firebase ID tokens with firebase-admin's `verify_id_token`.

firebase-admin checks the header, project audience and issuer, then has google-auth verify the
RS256 signature against Google's public certificates (fetched over HTTP, cached per their
Cache-Control headers). Verification needs the project id and those certificates only: no
service-account credentials, and no network at start-up.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Final

import firebase_admin
import google.auth
import google.auth.credentials
import google.auth.exceptions
from firebase_admin import auth as firebase_auth
from firebase_admin import exceptions as firebase_exceptions

from service.auth import AuthError, checked_uid
from service.config import ConfigError, Settings

APP_NAME_PREFIX: Final = "videocalls-auth"
# firebase-admin reads the emulator host from this variable on every call, not from its options.
EMULATOR_HOST_ENV: Final = "FIREBASE_AUTH_EMULATOR_HOST"
# Tolerates a server clock a few seconds behind Google's: a freshly refreshed token would
# otherwise be "used too early" (iat in the future) and the user signed out for no reason.
CLOCK_SKEW_SECONDS: Final = 10
# The scopes firebase-admin itself requests for Application Default credentials.
_SCOPES: Final = [
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/datastore",
    "https://www.googleapis.com/auth/devstorage.read_write",
    "https://www.googleapis.com/auth/firebase",
    "https://www.googleapis.com/auth/identitytoolkit",
    "https://www.googleapis.com/auth/userinfo.email",
]

logger = logging.getLogger(__name__)
# initialize_app refuses a second app with the same name, and several web workers' start-up
# code (or tests) may build an authenticator concurrently within one process.
_apps_lock = threading.Lock()


def _sync_emulator_host(settings: Settings) -> None:
    configured = settings.firebase_auth_emulator_host
    if configured:
        if settings.is_production:
            raise ConfigError("FIREBASE_AUTH_EMULATOR_HOST is refused when APP_ENV=production")
        # firebase-admin raises on a URL here only at the first verification; fail at start-up.
        if "//" in configured or ":" not in configured:
            raise ConfigError(f"{EMULATOR_HOST_ENV} must be host:port (for example 127.0.0.1:9099)")
        # The settings are the source of truth, but firebase-admin only looks at the process
        # environment, so make sure it sees the configured value.
        os.environ[EMULATOR_HOST_ENV] = configured
    elif os.environ.get(EMULATOR_HOST_ENV):
        # Against the emulator firebase-admin skips signature checks entirely: never let a
        # stray variable switch that on behind the settings' back.
        raise ConfigError(
            f"{EMULATOR_HOST_ENV} is set in the process environment but not in the settings"
        )


def _credential(settings: Settings) -> google.auth.credentials.Credentials:
    path = settings.google_application_credentials
    if path:
        try:
            # google-auth ships py.typed but leaves these functions unannotated.
            loaded = google.auth.load_credentials_from_file(path, scopes=_SCOPES)  # type: ignore[no-untyped-call]
            credential: google.auth.credentials.Credentials = loaded[0]
        except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
            raise ConfigError(f"GOOGLE_APPLICATION_CREDENTIALS cannot be used: {exc}") from None
        return credential
    # Without a credential firebase-admin falls back to Application Default Credentials when
    # the auth client is created, which fails off Google Cloud after probing the metadata
    # server over the network. ID-token verification never uses it, so pass an empty one.
    return google.auth.credentials.AnonymousCredentials()  # type: ignore[no-untyped-call]


def _firebase_app(settings: Settings) -> Any:
    # One app per project, credential file and timeout, shared by every authenticator built
    # for them: its auth client caches Google's certificates for the life of the process.
    project, credentials_file, timeout = (
        settings.firebase_project_id,
        settings.google_application_credentials,
        settings.firebase_http_timeout,
    )
    name = f"{APP_NAME_PREFIX}:{project}:{credentials_file}:{timeout:g}"
    with _apps_lock:
        try:
            return firebase_admin.get_app(name)
        except ValueError:
            pass  # not initialised yet
        # httpTimeout bounds each of its HTTP calls, the certificate fetch included (its
        # default, 120 s, would hold a request, and a worker thread, for two minutes).
        return firebase_admin.initialize_app(
            _credential(settings), {"projectId": project, "httpTimeout": timeout}, name=name
        )


class FirebaseAuthenticator:
    """Verifies Firebase ID tokens for `settings.firebase_project_id`.

    `check_revoked` (FIREBASE_CHECK_REVOKED) additionally asks the Firebase Auth API, on every
    request, whether the token was revoked or the user disabled; it needs
    GOOGLE_APPLICATION_CREDENTIALS. Off by default: ID tokens live one hour and the clinic's
    backend deactivates accounts here. Anonymous sign-ins and tokens of an Identity Platform
    tenant are refused unless FIREBASE_ALLOW_ANONYMOUS / FIREBASE_ALLOWED_TENANTS say so.
    """

    # Verification may wait on Google's certificates: common.as_caller runs it on threads of
    # its own, never on the database's.
    blocks_on_network = True

    def __init__(self, settings: Settings, *, check_revoked: bool | None = None) -> None:
        if check_revoked is None:
            check_revoked = settings.firebase_check_revoked
        if not settings.firebase_project_id:
            raise ConfigError("FIREBASE_PROJECT_ID is required with AUTH_MODE=firebase")
        _sync_emulator_host(settings)
        if (
            check_revoked
            and not settings.google_application_credentials
            and not settings.firebase_auth_emulator_host
        ):
            raise ConfigError("checking revoked tokens needs GOOGLE_APPLICATION_CREDENTIALS")
        self._app = _firebase_app(settings)
        self._check_revoked = check_revoked
        self._allow_anonymous = settings.firebase_allow_anonymous
        self._tenants = frozenset(settings.firebase_allowed_tenants)

    def verify(self, token: str) -> str:
        # Exception texts from firebase-admin and google-auth can quote the token, so only
        # exception type names are logged, and `from None` keeps them out of tracebacks.
        try:
            claims = firebase_auth.verify_id_token(
                token,
                app=self._app,
                check_revoked=self._check_revoked,
                clock_skew_seconds=CLOCK_SKEW_SECONDS,
            )
        except firebase_auth.ExpiredIdTokenError:
            raise AuthError("expired_token") from None
        except firebase_auth.RevokedIdTokenError:
            raise AuthError("revoked_token") from None
        except firebase_auth.InvalidIdTokenError as exc:
            logger.info("Firebase ID token rejected: %s", type(exc).__name__)
            raise AuthError("invalid_token") from None
        except firebase_auth.UserDisabledError:
            raise AuthError("user_disabled") from None
        except firebase_auth.UserNotFoundError:
            # Only with check_revoked: the account was deleted after the token was issued.
            raise AuthError("revoked_token") from None
        except firebase_auth.CertificateFetchError as exc:
            # Names Google's certificate URL and the transport failure, never the token.
            logger.warning("cannot fetch Firebase ID-token certificates: %s", exc)
            raise AuthError("auth_unavailable") from None
        except firebase_exceptions.FirebaseError as exc:
            # Only with check_revoked: the Firebase Auth API failed or refused us.
            logger.warning("Firebase Auth API call failed: %s", type(exc).__name__)
            raise AuthError("auth_unavailable") from None
        except ValueError as exc:
            # Raised for malformed input before any Firebase error type applies.
            logger.info("Firebase ID token rejected: %s", type(exc).__name__)
            raise AuthError("invalid_token") from None
        uid = claims.get("uid") if isinstance(claims, dict) else None
        if not isinstance(uid, str) or not uid:
            raise AuthError("invalid_token")
        self._admitted(claims)
        return checked_uid(uid)

    def _admitted(self, claims: dict[str, Any]) -> None:
        """A genuine token may still be one the clinic does not take: an anonymous sign-in (no
        identity at all) or a user of another tenant of the project."""
        firebase = claims.get("firebase")
        firebase = firebase if isinstance(firebase, dict) else {}
        if firebase.get("sign_in_provider") == "anonymous" and not self._allow_anonymous:
            logger.info("Firebase ID token rejected: anonymous sign-in")
            raise AuthError("invalid_token")
        tenant = firebase.get("tenant")
        if tenant is not None and tenant not in self._tenants:
            logger.info("Firebase ID token rejected: tenant not in FIREBASE_ALLOWED_TENANTS")
            raise AuthError("invalid_token")
