"""Jitsi tokens and meeting links, in the shape Prosody's `token_verification` accepts.

Claims: `aud`/`iss` = the app id, `sub` = the tenant (usually the Jitsi domain), `room`,
`iat`, `nbf`, `exp`, `jti`, the top-level `moderator` older frontends read, and
`context.user` (whose `moderator` is what jitsi-contrib's `token_affiliation` reads) plus
`context.features`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from service.config import KNOWN_FEATURES, Settings
from service.domain.model import Role
from service.fields import is_https_url

# Clocks on the Jitsi host and here differ a little; a token must not be "not yet valid".
NBF_LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class Participant:
    uid: str
    name: str
    email: str | None
    avatar: str | None
    role: Role


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: int  # Unix seconds
    lifetime: int  # seconds


def is_moderator(role: Role) -> bool:
    """The doctor moderates (token claims, `isModerator` of a token grant); nobody else."""
    return role is Role.DOCTOR


def features_for(settings: Settings, role: Role) -> dict[str, bool]:
    granted = settings.doctor_features if role is Role.DOCTOR else settings.patient_features
    return {feature: feature in granted for feature in KNOWN_FEATURES}


def mint_token(settings: Settings, participant: Participant, room: str, now_s: int) -> IssuedToken:
    is_doctor = participant.role is Role.DOCTOR
    moderator = is_moderator(participant.role)
    user: dict[str, Any] = {
        "id": participant.uid,
        "name": participant.name,
        "moderator": moderator,
        "affiliation": "owner" if moderator else "member",
        "lobby_bypass": (
            settings.doctor_lobby_bypass if is_doctor else settings.patient_lobby_bypass
        ),
    }
    # Imports accept https URLs only; one stored before that rule (`javascript:...`) is left out
    # rather than handed to every participant's browser.
    if is_https_url(participant.avatar):
        user["avatar"] = participant.avatar
    if settings.jitsi_token_include_email and participant.email:
        user["email"] = participant.email
    expires_at = now_s + settings.jitsi_token_ttl
    claims: dict[str, Any] = {
        "aud": settings.jitsi_app_id,
        "iss": settings.jitsi_app_id,
        "sub": settings.jitsi_token_subject,
        "room": room,
        "iat": now_s,
        "nbf": now_s - NBF_LEEWAY_SECONDS,
        "exp": expires_at,
        "jti": uuid.uuid4().hex,
        "moderator": moderator,
        "context": {"user": user, "features": features_for(settings, participant.role)},
    }
    token = jwt.encode(claims, settings.jitsi_app_secret, algorithm="HS256")
    return IssuedToken(token=token, expires_at=expires_at, lifetime=settings.jitsi_token_ttl)


def meeting_link(settings: Settings, room: str, token: str) -> str:
    # The token goes in the query, where Jitsi reads it; config overrides belong after `#`.
    return f"https://{settings.jitsi_domain}/{room}?jwt={token}"


def describe_lifetime(seconds: int) -> str:
    """`10800` -> "3 hours", as the API document words it."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    minutes = seconds // 60
    if minutes:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"
