"""Firebase ID-token verification through the real firebase-admin and google-auth code.

Only the HTTP request for Google's public certificates is replaced (at requests' transport
adapter, below google-auth's transport and firebase-admin's caching session); the tokens are
real RS256 JWTs signed with a key and self-signed certificate generated here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from firebase_admin import auth as firebase_auth

from service.auth import AuthError, build_authenticator
from service.auth.firebase import EMULATOR_HOST_ENV, FirebaseAuthenticator
from service.clock import now_s
from service.config import AuthMode, ConfigError, Settings
from tests import firebase_tokens
from tests.firebase_tokens import ATTACKER, CERT_URL, GOOGLE, KID, PROJECT, UID, CertEndpoint

_claims = firebase_tokens.claims
_id_token = firebase_tokens.id_token


@pytest.fixture
def certs(monkeypatch: pytest.MonkeyPatch) -> CertEndpoint:
    return firebase_tokens.install_cert_endpoint(monkeypatch)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.delenv(EMULATOR_HOST_ENV, raising=False)
    yield Settings(
        jitsi_app_id="videocalls",
        jitsi_app_secret="x" * 64,
        jitsi_domain="meet.example.org",
        auth_mode=AuthMode.FIREBASE,
        firebase_project_id=PROJECT,
    )


@pytest.fixture
def verifier(settings: Settings, certs: CertEndpoint) -> FirebaseAuthenticator:
    authenticator = build_authenticator(settings)
    assert isinstance(authenticator, FirebaseAuthenticator)
    return authenticator


def _rejected(verifier: FirebaseAuthenticator, token: str) -> AuthError:
    with pytest.raises(AuthError) as info:
        verifier.verify(token)
    return info.value


def test_valid_token_returns_uid(verifier: FirebaseAuthenticator, certs: CertEndpoint) -> None:
    assert verifier.verify(_id_token()) == UID
    assert certs.calls == [CERT_URL]


def test_expired_token(verifier: FirebaseAuthenticator) -> None:
    now = now_s()
    token = _id_token(_claims(iat=now - 7200, auth_time=now - 7200, exp=now - 3600))
    error = _rejected(verifier, token)
    assert (error.code, error.http_status) == ("expired_token", 401)


def test_wrong_audience(verifier: FirebaseAuthenticator) -> None:
    assert _rejected(verifier, _id_token(_claims(aud="another-project"))).code == "invalid_token"


def test_wrong_issuer(verifier: FirebaseAuthenticator) -> None:
    token = _id_token(_claims(iss="https://securetoken.google.com/another-project"))
    assert _rejected(verifier, token).code == "invalid_token"


def test_signed_by_another_key(verifier: FirebaseAuthenticator, certs: CertEndpoint) -> None:
    assert _rejected(verifier, _id_token(key=ATTACKER.key)).code == "invalid_token"
    # The signature check itself rejected it, after fetching the real certificates.
    assert certs.calls == [CERT_URL]


def test_missing_kid(verifier: FirebaseAuthenticator) -> None:
    assert _rejected(verifier, _id_token(kid=None)).code == "invalid_token"


def test_unknown_kid(verifier: FirebaseAuthenticator) -> None:
    assert _rejected(verifier, _id_token(kid="rotated-away")).code == "invalid_token"


def test_hs256_token_is_rejected(verifier: FirebaseAuthenticator) -> None:
    # Algorithm confusion: an HMAC token "signed" with the public certificate text.
    token = jwt.encode(_claims(), "k" * 64, algorithm="HS256", headers={"kid": KID})
    assert _rejected(verifier, token).code == "invalid_token"


def test_issued_in_the_future(verifier: FirebaseAuthenticator) -> None:
    now = now_s()
    token = _id_token(_claims(iat=now + 600, auth_time=now + 600, exp=now + 4200))
    assert _rejected(verifier, token).code == "invalid_token"


def test_missing_subject(verifier: FirebaseAuthenticator) -> None:
    token = _id_token(_claims(sub=None, user_id=None))
    assert _rejected(verifier, token).code == "invalid_token"


def test_certificate_fetch_failure_is_server_side(
    verifier: FirebaseAuthenticator, certs: CertEndpoint
) -> None:
    certs.error = requests.exceptions.ConnectionError("connection refused")
    error = _rejected(verifier, _id_token())
    assert (error.code, error.http_status) == ("auth_unavailable", 503)


def test_certificate_endpoint_error_status_is_server_side(
    verifier: FirebaseAuthenticator, certs: CertEndpoint
) -> None:
    certs.status = 500
    assert _rejected(verifier, _id_token()).code == "auth_unavailable"


def test_token_never_logged_or_chained(
    verifier: FirebaseAuthenticator, caplog: pytest.LogCaptureFixture
) -> None:
    # google-auth quotes a malformed token in its error message; none of it may escape.
    token = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ"
    caplog.set_level(logging.DEBUG)
    error = _rejected(verifier, token)
    assert error.code == "invalid_token"
    assert token not in str(error) and token not in error.message
    assert error.__cause__ is None and error.__suppress_context__
    assert token not in caplog.text
    signed = _id_token(key=ATTACKER.key)
    _rejected(verifier, signed)
    assert signed not in caplog.text


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (firebase_auth.RevokedIdTokenError("revoked"), "revoked_token"),
        (firebase_auth.UserDisabledError("disabled"), "user_disabled"),
        (firebase_auth.UserNotFoundError("gone"), "revoked_token"),
    ],
)
def test_check_revoked_errors_are_mapped(
    verifier: FirebaseAuthenticator,
    monkeypatch: pytest.MonkeyPatch,
    raised: Exception,
    code: str,
) -> None:
    # These come only from the Auth API lookup that check_revoked adds; no network here.
    def fail(*_: Any, **__: Any) -> dict[str, Any]:
        raise raised

    monkeypatch.setattr(firebase_auth, "verify_id_token", fail)
    assert _rejected(verifier, _id_token()).code == code


def test_emulator_host_is_honoured(
    settings: Settings, certs: CertEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Auth emulator issues unsigned tokens; firebase-admin accepts them only when told
    # (through the environment) that it is talking to the emulator.
    # Registers the variable with monkeypatch so it is removed again after the test.
    monkeypatch.setenv(EMULATOR_HOST_ENV, "")
    emulated = replace(settings, firebase_auth_emulator_host="127.0.0.1:9099")
    unsigned = jwt.encode(_claims(), key="", algorithm="none")
    assert build_authenticator(emulated).verify(unsigned) == UID
    assert certs.calls == []
    assert os.environ[EMULATOR_HOST_ENV] == "127.0.0.1:9099"


def test_stray_emulator_variable_is_refused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EMULATOR_HOST_ENV, "127.0.0.1:9099")
    with pytest.raises(ConfigError, match=EMULATOR_HOST_ENV):
        build_authenticator(settings)


@pytest.mark.parametrize(
    ("app_env", "host"),
    [("production", "127.0.0.1:9099"), ("development", "http://127.0.0.1:9099")],
)
def test_bad_emulator_settings_are_refused(settings: Settings, app_env: str, host: str) -> None:
    with pytest.raises(ConfigError):
        build_authenticator(replace(settings, app_env=app_env, firebase_auth_emulator_host=host))


def test_service_account_file_is_used(
    settings: Settings, certs: CertEndpoint, tmp_path: Path
) -> None:
    key_pem = GOOGLE.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    account = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "abc",
        "private_key": key_pem,
        "client_email": f"firebase-adminsdk@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(account))
    verifier = build_authenticator(replace(settings, google_application_credentials=str(path)))
    assert verifier.verify(_id_token()) == UID


def test_unreadable_credentials_file_is_refused(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        build_authenticator(replace(settings, google_application_credentials=str(path)))


def test_project_id_is_required(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="FIREBASE_PROJECT_ID"):
        build_authenticator(replace(settings, firebase_project_id=""))


# --- who the clinic takes (issue 33, item 3) ------------------------------------------------


def _provider(provider: str, **firebase: Any) -> dict[str, Any]:
    return _claims(firebase={"identities": {}, "sign_in_provider": provider, **firebase})


def test_an_anonymous_sign_in_is_refused_by_default(
    verifier: FirebaseAuthenticator, caplog: pytest.LogCaptureFixture
) -> None:
    token = _id_token(_provider("anonymous"))
    with caplog.at_level(logging.INFO):
        assert _rejected(verifier, token).code == "invalid_token"
    assert "anonymous sign-in" in caplog.text
    assert token not in caplog.text
    # Signed by Google's key and otherwise valid: only the sign-in method refused it.
    assert verifier.verify(_id_token(_provider("password"))) == UID


def test_anonymous_sign_ins_when_the_clinic_allows_them(
    settings: Settings, certs: CertEndpoint
) -> None:
    allowing = build_authenticator(replace(settings, firebase_allow_anonymous=True))
    assert allowing.verify(_id_token(_provider("anonymous"))) == UID


def test_a_foreign_tenant_is_refused_unless_listed(
    settings: Settings, verifier: FirebaseAuthenticator, certs: CertEndpoint
) -> None:
    foreign = _id_token(_provider("password", tenant="other-clinic-x1y2"))
    assert _rejected(verifier, foreign).code == "invalid_token"
    listed = build_authenticator(replace(settings, firebase_allowed_tenants=("our-clinic-a1b2",)))
    ours = _id_token(_provider("password", tenant="our-clinic-a1b2"))
    assert listed.verify(ours) == UID
    assert _rejected(listed, foreign).code == "invalid_token"  # type: ignore[arg-type]
    # Without a tenant claim, a project-level user, as before.
    assert listed.verify(_id_token()) == UID


def test_the_certificate_fetch_has_a_bounded_timeout(
    settings: Settings, certs: CertEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    real = certs.send

    # Installed as a plain function, so it is bound: the adapter comes first; requests passes
    # (request, stream, timeout, verify, cert, proxies), positionally.
    def send(
        adapter: Any,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        *rest: Any,
    ) -> requests.Response:
        seen.append(timeout)
        return real(request)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    quick = build_authenticator(replace(settings, firebase_http_timeout=2.5))
    assert quick.verify(_id_token()) == UID
    assert seen == [2.5]


def test_firebase_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from harness.env import base_env
    from service.config import load_settings

    firebase = {"AUTH_MODE": "firebase", "FIREBASE_PROJECT_ID": PROJECT}
    default = load_settings(base_env(**firebase))
    assert (default.firebase_allow_anonymous, default.firebase_allowed_tenants) == (False, ())
    assert (default.firebase_check_revoked, default.firebase_http_timeout) == (False, 5.0)
    with pytest.raises(ConfigError, match="FIREBASE_CHECK_REVOKED needs"):
        load_settings(base_env(**firebase, FIREBASE_CHECK_REVOKED="true"))
    key = tmp_path / "sa.json"
    key.write_text("{}")
    checked = load_settings(
        base_env(
            **firebase,
            FIREBASE_CHECK_REVOKED="true",
            GOOGLE_APPLICATION_CREDENTIALS=str(key),
            FIREBASE_ALLOWED_TENANTS="a-1,b-2",
            FIREBASE_ALLOW_ANONYMOUS="yes",
            FIREBASE_HTTP_TIMEOUT="3",
        )
    )
    assert checked.firebase_check_revoked and checked.firebase_allow_anonymous
    assert checked.firebase_allowed_tenants == ("a-1", "b-2")
    assert checked.firebase_http_timeout == 3.0
