"""Standard Webhooks signatures (https://www.standardwebhooks.com), receiver and test sender.

Implemented with hmac directly rather than through the `standardwebhooks` package because the
receiver must judge the timestamp against an injected clock (testable, and the same clock the
rest of the request uses); the tests check interoperability against that package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
TOLERANCE_S = 5 * 60
# Generous bounds that still stop a client from making us HMAC megabytes of header. The
# webhook-id header's bound is the standard's, not an id's (service/fields.py::MAX_ID_CHARS):
# the receiver compares the two after verifying (service/api/prosody.py).
MAX_WEBHOOK_ID_CHARS = 256
MAX_SIGNATURES = 16


class SignatureError(Exception):
    """The request is not authentic or not fresh; `reason` is for logs and the audit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_secret(secret: str) -> bytes:
    """The base64-decoded part of a `whsec_...` secret, empty or not (ValueError if not base64).

    The one decoding: the signer, the receiver and the settings' checks (service/config.py)
    read a secret alike."""
    # Unpadded secrets are common: normalise the padding before a strict decode.
    encoded = secret.removeprefix(SECRET_PREFIX).rstrip("=")
    encoded += "=" * (-len(encoded) % 4)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"webhook secret is not base64 after {SECRET_PREFIX}") from None


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part of a `whsec_...` secret."""
    key = decode_secret(secret)
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def _digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value (`v1,<base64>`) for one secret; for tests and tools."""
    digest = _digest(secret_key(secret), msg_id, str(timestamp), body)
    return "v1," + base64.b64encode(digest).decode("ascii")


def _header(headers: Mapping[str, str], name: str) -> str:
    # HTTP header names are case-insensitive; a plain dict is not.
    for key, value in headers.items():
        if key.lower() == name:
            return value.strip()
    raise SignatureError(f"missing {name} header")


def _signatures(header: str) -> list[bytes]:
    parts = header.split()
    if len(parts) > MAX_SIGNATURES:
        raise SignatureError("too many signatures")
    found = []
    for part in parts:
        version, sep, encoded = part.partition(",")
        # Other versions (e.g. v1a, asymmetric) are skipped, as the standard asks.
        if not sep or version != "v1":
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def check_headers(headers: Mapping[str, str], now: float) -> tuple[str, str, list[bytes]]:
    """The `webhook-*` headers present, well formed and fresh: (id, timestamp, signatures).

    Needs no body: the receiver calls it before reading a byte of one (service/api/prosody.py),
    so a request that could never verify costs no upload. Raises SignatureError.
    """
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signature_header = _header(headers, "webhook-signature")
    if not msg_id or len(msg_id) > MAX_WEBHOOK_ID_CHARS:
        raise SignatureError("invalid webhook-id header")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("invalid webhook-timestamp header")
    if abs(now - int(timestamp)) > TOLERANCE_S:
        raise SignatureError("webhook-timestamp outside the 5 minute tolerance")
    candidates = _signatures(signature_header)
    if not candidates:
        raise SignatureError("no v1 signature")
    return msg_id, timestamp, candidates


def verify(secrets: Sequence[str], headers: Mapping[str, str], body: bytes, now: float) -> str:
    """Check the signature and freshness of one request; return its `webhook-id`.

    Any `v1` signature in the header may match any of `secrets` (rotation). The timestamp
    must be within 5 minutes of `now` (Unix seconds) in either direction.
    Raises SignatureError; nothing about the body is trusted before this returns.
    """
    msg_id, timestamp, candidates = check_headers(headers, now)
    matched = False
    for secret in secrets:
        expected = _digest(secret_key(secret), msg_id, timestamp, body)
        for candidate in candidates:
            # Keep comparing after a match so timing says nothing about which one matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no matching signature")
    return msg_id
