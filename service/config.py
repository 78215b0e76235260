"""Settings: read from the environment once at start-up, validated, frozen.

Nothing else in the service reads the environment. Every variable is documented in the
README with its default; a bad value stops the process with a one-line reason.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlparse

from service import operators
from service.config_values import (
    ConfigError as ConfigError,
)
from service.config_values import (
    check_secret as check_secret,
)
from service.config_values import (
    check_webhook_secret,
    env_bool,
    env_int,
    optional_seconds,
    seconds,
    split_list,
    webhook_secret,
)
from service.domain import audit_chain
from service.domain.model import PresenceSource
from service.operators import AdminKey

# --- the stock event_sync receiver (service/api/prosody.py) --------------------------------

# Peers whose event_sync requests are heard: loopback and the private ranges, where Prosody's
# container (docker-jitsi-meet's meet.jitsi network) or a Prosody on the same host sends from.
DEFAULT_EVENT_SYNC_NETWORKS = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)
# docker-jitsi-meet's MUC component (XMPP_MUC_DOMAIN), where event_sync is loaded.
DEFAULT_EVENT_SYNC_HOST = "muc.meet.jitsi"
# event_sync retries a failed request within seconds; two minutes also covers clock drift.
DEFAULT_EVENT_SYNC_MAX_AGE = 120
# How long a call's settled status may still be corrected by late events: the Prosody
# module's `video_call_events_max_age` (48 h), after which its spool drops what it could not
# deliver, so no event older than that can still arrive (docs/events.md, "Late evidence").
DEFAULT_CORRECTION_HORIZON = 172_800
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AuthMode(StrEnum):
    FIREBASE = "firebase"
    DEV = "dev"


# Development's CORS default: a frontend's dev server on this machine, over plain http.
DEV_CORS_ORIGIN_REGEX = r"http://(localhost|127\.0\.0\.1)(:[0-9]{1,5})?"
# Recording and live streaming are off unless the operator grants them: a consultation is
# recorded or broadcast only where the clinic has the patient's consent to it.
DEFAULT_DOCTOR_FEATURES = ("screen-sharing",)
DEFAULT_PATIENT_FEATURES = ("screen-sharing",)
# Features Jitsi knows in `context.features`; anything listed and not granted is sent as false.
KNOWN_FEATURES = (
    "recording",
    "livestreaming",
    "screen-sharing",
    "transcription",
    "outbound-call",
    "sip-outbound-call",
)


# --- webhooks to the clinic's backend (service/webhooks) ---------------------------------

DEFAULT_WEBHOOK_RETRY_DELAYS = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@dataclass(frozen=True)
class WebhookSettings:
    """WEBHOOK_*: where the service tells the clinic what happened, and how hard it tries."""

    url: str = ""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    retry_delays: tuple[float, ...] = DEFAULT_WEBHOOK_RETRY_DELAYS
    timeout: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.url)


def load_webhook_settings(env: Mapping[str, str], production: bool) -> WebhookSettings:
    url = env.get("WEBHOOK_URL", "").strip()
    secrets = split_list(env.get("WEBHOOK_SECRET", ""), sep=None)
    for item in secrets:
        webhook_secret(item)
    if url:
        parsed = urlparse(url)
        allowed = ("https",) if production else ("https", "http")
        if parsed.scheme not in allowed or not parsed.hostname:
            need = "https://" if production else "http:// or https://"
            raise ConfigError(f"WEBHOOK_URL must be an absolute {need} URL")
        if parsed.username or parsed.password:
            raise ConfigError("WEBHOOK_URL must not carry credentials: WEBHOOK_SECRET signs")
        if not secrets:
            raise ConfigError("WEBHOOK_SECRET is required when WEBHOOK_URL is set")
    raw_delays = env.get("WEBHOOK_RETRY_DELAYS", "").strip()
    delays = (
        tuple(seconds("WEBHOOK_RETRY_DELAYS", d, 0) for d in split_list(raw_delays))
        if raw_delays
        else DEFAULT_WEBHOOK_RETRY_DELAYS
    )
    timeout = optional_seconds(env, "WEBHOOK_TIMEOUT", 10.0, 0.1)
    return WebhookSettings(url=url, secrets=secrets, retry_delays=delays, timeout=timeout)


@dataclass(frozen=True)
class Settings:
    jitsi_app_id: str
    jitsi_app_secret: str = field(repr=False)
    jitsi_domain: str
    database_url: str = "sqlite:///data/videocalls.db"
    jitsi_token_subject: str = ""
    jitsi_token_ttl: int = 10800
    jitsi_token_include_email: bool = False
    # context.user.lobby_bypass per role (jitsi-contrib token_lobby_bypass): false makes that
    # party knock in Jitsi's lobby when the lobby is on (docs/operator-guide.md).
    doctor_lobby_bypass: bool = True
    patient_lobby_bypass: bool = True
    doctor_features: tuple[str, ...] = DEFAULT_DOCTOR_FEATURES
    patient_features: tuple[str, ...] = DEFAULT_PATIENT_FEATURES
    auth_mode: AuthMode = AuthMode.FIREBASE
    dev_auth_secret: str = field(default="", repr=False)
    firebase_project_id: str = ""
    google_application_credentials: str = ""
    firebase_auth_emulator_host: str = ""
    # Who the clinic takes and how long Google may take (service/auth/firebase.py).
    firebase_allow_anonymous: bool = False
    firebase_allowed_tenants: tuple[str, ...] = ()
    firebase_check_revoked: bool = False
    firebase_http_timeout: float = 5.0
    admin_api_key: str = field(default="", repr=False)
    # Every admin key: ADMIN_API_KEYS' named ones and ADMIN_API_KEY as `admin` (operators.py).
    admin_keys: tuple[AdminKey, ...] = ()
    cors_origins: tuple[str, ...] = ()
    # Development without CORS_ORIGINS: any http://localhost:PORT (a frontend's dev server).
    cors_origin_regex: str = ""
    app_env: str = "development"
    log_level: str = "INFO"
    db_pool_size: int = 8
    prosody_events_secrets: tuple[str, ...] = field(default=(), repr=False)
    event_sync_token: str = field(default="", repr=False)
    event_sync_allowed_networks: tuple[Network, ...] = tuple(
        ipaddress.ip_network(n) for n in DEFAULT_EVENT_SYNC_NETWORKS
    )
    event_sync_host: str = DEFAULT_EVENT_SYNC_HOST
    event_sync_max_age: int = DEFAULT_EVENT_SYNC_MAX_AGE
    call_end_grace: int = 120
    no_show_grace: int = 900
    correction_horizon: int = DEFAULT_CORRECTION_HORIZON
    max_call_duration: int = 14400
    sweep_interval: int = 30
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    metrics_token: str = field(default="", repr=False)
    presence_source: PresenceSource = PresenceSource.CLIENTS
    # Set by PRESENCE_SOURCE itself, not defaulted: production needs `clients` said aloud.
    presence_source_explicit: bool = False
    # Peers whose X-Forwarded-For / X-Forwarded-Proto uvicorn believes (service/cli.py).
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1",)
    # Seconds a request's headers, and then its body, may take to arrive (408 / closed).
    body_read_timeout: float = 10.0
    # The audit trail's checkpoints (service/audit.py): the Ed25519 key that signs them, the
    # public keys `audit verify` trusts besides its own (earlier keys), and how often.
    audit_signing_key: str = field(default="", repr=False)
    audit_trusted_keys: tuple[str, ...] = ()
    audit_checkpoint_interval: int = 3600
    # Every read of calls, lists, stats and console views is an audit entry (HIPAA 164.312(b)).
    audit_reads: bool = True

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def server_tracks_presence(self) -> bool:
        """Every new call is tracked by the server from its creation."""
        return self.presence_source is PresenceSource.SERVER


def _features(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if name not in env:
        return default
    features = split_list(env[name])
    unknown = [f for f in features if f not in KNOWN_FEATURES]
    if unknown:
        raise ConfigError(f"{name} has unknown features {unknown}; known: {list(KNOWN_FEATURES)}")
    return features


def _networks(env: Mapping[str, str]) -> tuple[Network, ...]:
    """EVENT_SYNC_ALLOWED_NETWORKS: comma-separated CIDRs (a bare address is one host)."""
    raw = env.get("EVENT_SYNC_ALLOWED_NETWORKS", "").strip()
    items = split_list(raw) if raw else DEFAULT_EVENT_SYNC_NETWORKS
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            raise ConfigError(
                f"EVENT_SYNC_ALLOWED_NETWORKS: {item!r} is not a network in CIDR notation "
                f"({exc}); e.g. 172.16.0.0/12,127.0.0.1/32"
            ) from None
    return tuple(networks)


# A DNS name as Prosody's components are named: labels of letters, digits and hyphens.
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _event_sync_host(env: Mapping[str, str]) -> str:
    host = env.get("EVENT_SYNC_HOST", "").strip().lower() or DEFAULT_EVENT_SYNC_HOST
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        raise ConfigError(
            f"EVENT_SYNC_HOST must be the MUC component's host name (e.g. "
            f"{DEFAULT_EVENT_SYNC_HOST}), got {host!r}"
        )
    return host


def _forwarded_allow_ips(env: Mapping[str, str]) -> tuple[str, ...]:
    """FORWARDED_ALLOW_IPS: the reverse proxies whose forwarding headers name the client."""
    items = split_list(env.get("FORWARDED_ALLOW_IPS", "")) or ("127.0.0.1",)
    for item in items:
        # `*` would let any client write its own address into the log and the throttle.
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                "FORWARDED_ALLOW_IPS must be the proxies' addresses or CIDRs, comma-separated "
                f"(never *), got {item!r}"
            ) from None
    return items


def _project_from_credentials(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"GOOGLE_APPLICATION_CREDENTIALS cannot be read: {exc}") from None
    project = data.get("project_id") if isinstance(data, dict) else None
    return project if isinstance(project, str) else ""


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `env` (default: the process environment) or raise ConfigError."""
    env = os.environ if env is None else env
    app_env = env.get("APP_ENV", "development").strip() or "development"
    if app_env not in ("development", "test", "production"):
        raise ConfigError(f"APP_ENV must be development, test or production, got {app_env!r}")

    secret = env.get("JITSI_APP_SECRET", "")
    check_secret("JITSI_APP_SECRET", secret)
    app_id = env.get("JITSI_APP_ID", "").strip()
    if not app_id:
        raise ConfigError("JITSI_APP_ID is required (the same value as Jitsi's JWT_APP_ID)")
    domain = env.get("JITSI_DOMAIN", "").strip().removeprefix("https://").rstrip("/")
    if not domain or "/" in domain or "?" in domain:
        raise ConfigError("JITSI_DOMAIN is required: the public host name of Jitsi Meet")

    database_url = env.get("DATABASE_URL", "").strip() or "sqlite:///data/videocalls.db"
    if not database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ConfigError("DATABASE_URL must start with sqlite:/// or postgresql://")

    try:
        auth_mode = AuthMode(env.get("AUTH_MODE", "firebase").strip() or "firebase")
    except ValueError:
        raise ConfigError("AUTH_MODE must be firebase or dev") from None
    dev_secret = env.get("DEV_AUTH_SECRET", "")
    emulator = env.get("FIREBASE_AUTH_EMULATOR_HOST", "").strip()
    credentials = env.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip()
    project_id = env.get("FIREBASE_PROJECT_ID", "").strip()

    if app_env == "production":
        if auth_mode is AuthMode.DEV:
            raise ConfigError("AUTH_MODE=dev is refused when APP_ENV=production")
        if emulator:
            raise ConfigError("FIREBASE_AUTH_EMULATOR_HOST is refused when APP_ENV=production")
    if auth_mode is AuthMode.DEV:
        check_secret("DEV_AUTH_SECRET", dev_secret)
    elif not project_id:
        project_id = _project_from_credentials(credentials) if credentials else ""
        if not project_id:
            raise ConfigError(
                "FIREBASE_PROJECT_ID is required with AUTH_MODE=firebase "
                "(or a GOOGLE_APPLICATION_CREDENTIALS file that names project_id)"
            )

    check_revoked = env_bool(env, "FIREBASE_CHECK_REVOKED", False)
    if check_revoked and auth_mode is AuthMode.FIREBASE and not (credentials or emulator):
        raise ConfigError("FIREBASE_CHECK_REVOKED needs GOOGLE_APPLICATION_CREDENTIALS")

    admin_key = env.get("ADMIN_API_KEY", "")
    if admin_key:
        check_secret("ADMIN_API_KEY", admin_key)

    events_secrets = split_list(env.get("PROSODY_EVENTS_SECRET", ""), sep=None)
    for item in events_secrets:
        check_webhook_secret("PROSODY_EVENTS_SECRET", item)
    event_sync_token = env.get("EVENT_SYNC_TOKEN", "")
    if event_sync_token:
        check_secret("EVENT_SYNC_TOKEN", event_sync_token)

    metrics_token = env.get("METRICS_TOKEN", "")
    if metrics_token:
        check_secret("METRICS_TOKEN", metrics_token)

    origins = split_list(env.get("CORS_ORIGINS", ""))
    if app_env == "production" and "*" in origins:
        raise ConfigError("CORS_ORIGINS=* is refused when APP_ENV=production")

    # A frontend's dev server (http://localhost:3000, :5173, ...) works out of the box in
    # development; CORS_ORIGINS, when set, is the whole list; production never guesses.
    origin_regex = DEV_CORS_ORIGIN_REGEX if app_env == "development" and not origins else ""

    presence_source, explicit = _presence_source(
        env, receiver=bool(events_secrets or event_sync_token), production=app_env == "production"
    )

    log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")

    return Settings(
        jitsi_app_id=app_id,
        jitsi_app_secret=secret,
        jitsi_domain=domain,
        database_url=database_url,
        jitsi_token_subject=env.get("JITSI_TOKEN_SUBJECT", "").strip() or domain,
        jitsi_token_ttl=env_int(env, "JITSI_TOKEN_TTL", 10800, minimum=60),
        jitsi_token_include_email=env_bool(env, "JITSI_TOKEN_INCLUDE_EMAIL", False),
        doctor_lobby_bypass=env_bool(env, "JITSI_DOCTOR_LOBBY_BYPASS", True),
        patient_lobby_bypass=env_bool(env, "JITSI_PATIENT_LOBBY_BYPASS", True),
        doctor_features=_features(env, "JITSI_DOCTOR_FEATURES", DEFAULT_DOCTOR_FEATURES),
        patient_features=_features(env, "JITSI_PATIENT_FEATURES", DEFAULT_PATIENT_FEATURES),
        auth_mode=auth_mode,
        dev_auth_secret=dev_secret,
        firebase_project_id=project_id,
        google_application_credentials=credentials,
        firebase_auth_emulator_host=emulator,
        firebase_allow_anonymous=env_bool(env, "FIREBASE_ALLOW_ANONYMOUS", False),
        firebase_allowed_tenants=split_list(env.get("FIREBASE_ALLOWED_TENANTS", "")),
        firebase_check_revoked=check_revoked,
        firebase_http_timeout=optional_seconds(env, "FIREBASE_HTTP_TIMEOUT", 5.0, 0.5),
        admin_api_key=admin_key,
        admin_keys=_admin_keys(env, admin_key),
        cors_origins=origins,
        cors_origin_regex=origin_regex,
        app_env=app_env,
        log_level=log_level,
        db_pool_size=env_int(env, "DB_POOL_SIZE", 8, minimum=1),
        prosody_events_secrets=events_secrets,
        event_sync_token=event_sync_token,
        event_sync_allowed_networks=_networks(env),
        event_sync_host=_event_sync_host(env),
        event_sync_max_age=env_int(
            env, "EVENT_SYNC_MAX_AGE", DEFAULT_EVENT_SYNC_MAX_AGE, minimum=1
        ),
        call_end_grace=env_int(env, "CALL_END_GRACE", 120),
        no_show_grace=env_int(env, "NO_SHOW_GRACE", 900),
        correction_horizon=env_int(
            env, "CORRECTION_HORIZON", DEFAULT_CORRECTION_HORIZON, minimum=0
        ),
        max_call_duration=env_int(env, "MAX_CALL_DURATION", 14400, minimum=60),
        sweep_interval=env_int(env, "SWEEP_INTERVAL", 30),
        webhooks=load_webhook_settings(env, production=app_env == "production"),
        metrics_token=metrics_token,
        presence_source=presence_source,
        presence_source_explicit=explicit,
        forwarded_allow_ips=_forwarded_allow_ips(env),
        # At least half a second: a real client on a slow phone link must get a request in.
        body_read_timeout=optional_seconds(env, "BODY_READ_TIMEOUT", 10.0, 0.5),
        audit_signing_key=_audit_signing_key(env),
        audit_trusted_keys=_audit_trusted_keys(env),
        audit_checkpoint_interval=env_int(env, "AUDIT_CHECKPOINT_INTERVAL", 3600),
        audit_reads=env_bool(env, "AUDIT_READS", True),
    )


def _admin_keys(env: Mapping[str, str], legacy: str) -> tuple[AdminKey, ...]:
    try:
        return operators.parse(env.get("ADMIN_API_KEYS", ""), legacy)
    except ValueError as exc:
        raise ConfigError(f"ADMIN_API_KEYS: {exc}") from None


def _audit_signing_key(env: Mapping[str, str]) -> str:
    raw = env.get("AUDIT_SIGNING_KEY", "").strip()
    if raw:
        try:
            audit_chain.private_key(raw)
        except ValueError as exc:
            raise ConfigError(f"AUDIT_SIGNING_KEY {exc}") from None
    return raw


def _audit_trusted_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    try:
        return tuple(
            audit_chain.check_public_key(k) for k in split_list(env.get("AUDIT_TRUSTED_KEYS", ""))
        )
    except ValueError as exc:
        raise ConfigError(f"AUDIT_TRUSTED_KEYS {exc}") from None


def _presence_source(
    env: Mapping[str, str], *, receiver: bool, production: bool
) -> tuple[PresenceSource, bool]:
    """PRESENCE_SOURCE, or `server` whenever a Prosody receiver is configured; production
    never falls back to browsers' word by default (it must be said)."""
    raw = env.get("PRESENCE_SOURCE", "").strip().lower()
    if raw:
        try:
            source = PresenceSource(raw)
        except ValueError:
            raise ConfigError(f"PRESENCE_SOURCE must be server or clients, got {raw!r}") from None
        if source is PresenceSource.SERVER and not receiver:
            raise ConfigError(
                "PRESENCE_SOURCE=server needs a Prosody receiver: set PROSODY_EVENTS_SECRET "
                "(the signed module) or EVENT_SYNC_TOKEN (event_sync)"
            )
        return source, True
    if receiver:
        return PresenceSource.SERVER, False
    if production:
        raise ConfigError(
            "APP_ENV=production without a Prosody receiver would let browsers write the "
            "record: set PROSODY_EVENTS_SECRET (or EVENT_SYNC_TOKEN), or PRESENCE_SOURCE=clients "
            "to accept client-reported calls knowingly"
        )
    return PresenceSource.CLIENTS, False
