"""Jitsi tokens and links, checked with PyJWT exactly as Prosody's token_verification would."""

from __future__ import annotations

import jwt
import pytest

from harness.env import base_env
from service import jitsi
from service.config import ConfigError, load_settings
from service.domain.model import Role

NOW = 1_795_500_000


def participant(role: Role) -> jitsi.Participant:
    return jitsi.Participant("u1", "Dr. Who", "who@example.test", "https://img.test/a.png", role)


def test_token_verifies_with_only_the_secret_and_app_id() -> None:
    settings = load_settings(base_env(JITSI_TOKEN_SUBJECT="tenant1"))
    issued = jitsi.mint_token(settings, participant(Role.DOCTOR), "appointment_a1", NOW)
    claims = jwt.decode(
        issued.token,
        settings.jitsi_app_secret,
        algorithms=["HS256"],
        audience=settings.jitsi_app_id,
        issuer=settings.jitsi_app_id,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["sub"] == "tenant1"
    assert claims["iat"] == NOW
    assert claims["nbf"] == NOW - jitsi.NBF_LEEWAY_SECONDS
    assert claims["exp"] == issued.expires_at == NOW + 10800
    assert claims["context"]["user"]["avatar"] == "https://img.test/a.png"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            issued.token,
            "another-secret-of-enough-length-000",
            algorithms=["HS256"],
            audience=settings.jitsi_app_id,
        )


def test_email_only_when_configured() -> None:
    off = load_settings(base_env())
    on = load_settings(base_env(JITSI_TOKEN_INCLUDE_EMAIL="true"))
    for settings, expected in ((off, None), (on, "who@example.test")):
        token = jitsi.mint_token(settings, participant(Role.PATIENT), "r", NOW).token
        user = jwt.decode(token, options={"verify_signature": False})["context"]["user"]
        assert user.get("email") == expected


def test_features_are_configurable() -> None:
    settings = load_settings(base_env(JITSI_DOCTOR_FEATURES="recording", JITSI_PATIENT_FEATURES=""))
    assert jitsi.features_for(settings, Role.DOCTOR)["recording"] is True
    assert jitsi.features_for(settings, Role.DOCTOR)["screen-sharing"] is False
    assert not any(jitsi.features_for(settings, Role.PATIENT).values())


def test_ttl_and_link() -> None:
    settings = load_settings(base_env(JITSI_TOKEN_TTL="5400"))
    issued = jitsi.mint_token(settings, participant(Role.PATIENT), "appointment_x", NOW)
    assert issued.lifetime == 5400
    assert jitsi.describe_lifetime(issued.lifetime) == "90 minutes"
    link = jitsi.meeting_link(settings, "appointment_x", issued.token)
    assert link == f"https://meet.example.test/appointment_x?jwt={issued.token}"


@pytest.mark.parametrize(
    "seconds,text",
    [
        (10800, "3 hours"),
        (3600, "1 hour"),
        (86400, "1 day"),
        (600, "10 minutes"),
        (90, "1 minute"),
        (30, "30 seconds"),
    ],
)
def test_describe_lifetime(seconds: int, text: str) -> None:
    assert jitsi.describe_lifetime(seconds) == text


@pytest.mark.parametrize(
    ("env", "doctor", "patient"),
    [
        ({}, True, True),
        ({"JITSI_PATIENT_LOBBY_BYPASS": "false"}, True, False),
        ({"JITSI_DOCTOR_LOBBY_BYPASS": "no", "JITSI_PATIENT_LOBBY_BYPASS": "yes"}, False, True),
    ],
)
def test_lobby_bypass_per_role(env: dict[str, str], doctor: bool, patient: bool) -> None:
    settings = load_settings(base_env(**env))
    for role, expected in ((Role.DOCTOR, doctor), (Role.PATIENT, patient)):
        token = jitsi.mint_token(settings, participant(role), "r", NOW).token
        user = jwt.decode(token, options={"verify_signature": False})["context"]["user"]
        assert user["lobby_bypass"] is expected


def test_lobby_bypass_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="JITSI_PATIENT_LOBBY_BYPASS"):
        load_settings(base_env(JITSI_PATIENT_LOBBY_BYPASS="sometimes"))
