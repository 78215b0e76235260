"""Dev tokens (AUTH_MODE=dev): minted and verified with PyJWT, HS256 and DEV_AUTH_SECRET only."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jwt
import pytest

from service.auth import AuthError, build_authenticator
from service.auth.dev import (
    DEV_AUDIENCE,
    DEV_ISSUER,
    LEEWAY_SECONDS,
    DevAuthenticator,
    mint_dev_token,
)
from service.clock import now_s
from service.config import AuthMode, ConfigError, Settings
from tests.clock import FrozenClock

# 64 bytes: long enough that PyJWT does not warn about short HMAC keys, even for HS512.
SECRET = "0123456789abcdef0123456789abcdef0123456789abcdef-dev-auth-secret"
OTHER_SECRET = "fedcba9876543210fedcba9876543210fedcba9876543210-other-secret!!"
UID = "patient-uid-7"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        jitsi_app_id="videocalls",
        jitsi_app_secret="x" * 64,
        jitsi_domain="meet.example.org",
        auth_mode=AuthMode.DEV,
        dev_auth_secret=SECRET,
    )


@pytest.fixture
def verifier(settings: Settings) -> DevAuthenticator:
    authenticator = build_authenticator(settings)
    assert isinstance(authenticator, DevAuthenticator)
    return authenticator


def _claims(**overrides: Any) -> dict[str, Any]:
    now = now_s()
    claims: dict[str, Any] = {
        "sub": UID,
        "iat": now,
        "exp": now + 600,
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _token(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _rejected(verifier: DevAuthenticator, token: str) -> str:
    with pytest.raises(AuthError) as info:
        verifier.verify(token)
    # PyJWT's exception text may quote the token: it must not ride along in a traceback.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    return info.value.code


def test_minted_token_verifies(settings: Settings, verifier: DevAuthenticator) -> None:
    token = mint_dev_token(settings, UID)
    assert verifier.verify(token) == UID
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=DEV_AUDIENCE)
    assert claims["iss"] == DEV_ISSUER
    assert claims["exp"] - claims["iat"] == 86400
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_custom_lifetime(settings: Settings) -> None:
    claims = jwt.decode(
        mint_dev_token(settings, UID, ttl_seconds=60),
        SECRET,
        algorithms=["HS256"],
        audience=DEV_AUDIENCE,
    )
    assert claims["exp"] - claims["iat"] == 60


def test_expired(verifier: DevAuthenticator) -> None:
    now = now_s()
    assert _rejected(verifier, _token(_claims(iat=now - 7200, exp=now - 3600))) == "expired_token"


def test_wrong_secret(verifier: DevAuthenticator) -> None:
    assert _rejected(verifier, _token(_claims(), secret=OTHER_SECRET)) == "invalid_token"


def test_alg_none(verifier: DevAuthenticator) -> None:
    unsigned = jwt.encode(_claims(), key="", algorithm="none")
    assert _rejected(verifier, unsigned) == "invalid_token"


def test_other_hmac_algorithm(verifier: DevAuthenticator) -> None:
    assert _rejected(verifier, _token(_claims(), algorithm="HS512")) == "invalid_token"


@pytest.mark.parametrize("claim", ["sub", "iat", "exp", "iss", "aud"])
def test_missing_claim(verifier: DevAuthenticator, claim: str) -> None:
    assert _rejected(verifier, _token(_claims(**{claim: None}))) == "invalid_token"


@pytest.mark.parametrize("sub", ["", "u" * 129])
def test_unusable_subject(verifier: DevAuthenticator, sub: str) -> None:
    assert _rejected(verifier, _token(_claims(sub=sub))) == "invalid_token"


def test_wrong_audience(verifier: DevAuthenticator) -> None:
    assert _rejected(verifier, _token(_claims(aud="videocalls"))) == "invalid_token"


def test_wrong_issuer(verifier: DevAuthenticator) -> None:
    assert _rejected(verifier, _token(_claims(iss="someone-else"))) == "invalid_token"


def test_garbage(verifier: DevAuthenticator) -> None:
    assert _rejected(verifier, "not.a.token") == "invalid_token"


def test_mint_rejects_bad_input(settings: Settings) -> None:
    with pytest.raises(ValueError, match="uid"):
        mint_dev_token(settings, "")
    with pytest.raises(ValueError, match="ttl"):
        mint_dev_token(settings, UID, ttl_seconds=0)


@pytest.mark.parametrize(
    "changes",
    [
        {"auth_mode": AuthMode.FIREBASE},
        {"app_env": "production"},
        {"dev_auth_secret": ""},
        {"dev_auth_secret": "short"},
    ],
)
def test_dev_mode_preconditions(settings: Settings, changes: dict[str, Any]) -> None:
    unusable = replace(settings, **changes)
    with pytest.raises(ConfigError):
        mint_dev_token(unusable, UID)
    with pytest.raises(ConfigError):
        DevAuthenticator(unusable)


def test_lifetimes_are_judged_by_the_service_clock(
    settings: Settings, verifier: DevAuthenticator, clock: FrozenClock
) -> None:
    token = mint_dev_token(settings, UID, ttl_seconds=600)
    clock.advance((600 + LEEWAY_SECONDS - 1) * 1000)
    assert verifier.verify(token) == UID
    clock.advance(1000)
    assert _rejected(verifier, token) == "expired_token"
    # Minted "later" than the verifier's now, beyond the leeway: not valid yet.
    clock.advance(-(600 + 2 * LEEWAY_SECONDS + 1) * 1000)
    assert _rejected(verifier, token) == "invalid_token"
