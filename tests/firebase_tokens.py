"""A stand-in for Google's Firebase ID-token certificates, and real RS256 ID tokens signed with
a key and self-signed certificate generated here: the unit tests of the Firebase verifier and
the API tests that go through firebase-admin's own verification share them.

Only the HTTP request for the certificates is replaced (at requests' transport adapter, below
google-auth's transport and firebase-admin's caching session).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import requests
import requests.adapters
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from service.clock import now_s

PROJECT = "videocalls-unit-test"
# Google's published endpoint for Firebase ID-token certificates (firebase-admin's constant).
CERT_URL = (
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
)
KID = "test-key-1"
UID = "doctor-uid-42"


@dataclass
class KeyPair:
    key: rsa.RSAPrivateKey
    cert_pem: str


def key_pair(common_name: str) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return KeyPair(key, cert.public_bytes(serialization.Encoding.PEM).decode())


# Key generation is the slow part; one pair per module is plenty.
GOOGLE = key_pair("securetoken.system.gserviceaccount.com")
ATTACKER = key_pair("attacker")


def claims(uid: str = UID, **overrides: Any) -> dict[str, Any]:
    now = now_s()
    values: dict[str, Any] = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "auth_time": now - 60,
        "user_id": uid,
        "sub": uid,
        "iat": now - 60,
        "exp": now + 3540,
        "firebase": {"identities": {}, "sign_in_provider": "custom"},
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def _default_claims() -> dict[str, Any]:
    return claims()


def id_token(
    claims: dict[str, Any] | None = None,
    *,
    key: rsa.RSAPrivateKey = GOOGLE.key,
    kid: str | None = KID,
) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims or _default_claims(), key, algorithm="RS256", headers=headers)


@dataclass
class CertEndpoint:
    """Stands in for Google's certificate URL; every other URL fails the test."""

    certs: dict[str, str] = field(default_factory=lambda: {KID: GOOGLE.cert_pem})
    status: int = 200
    error: Exception | None = None
    calls: list[str] = field(default_factory=list)

    # Installed as HTTPAdapter.send; a bound method is not re-bound, so no adapter argument.
    def send(self, request: requests.PreparedRequest, *_: Any, **__: Any) -> requests.Response:
        assert request.url == CERT_URL, f"unexpected HTTP request to {request.url}"
        self.calls.append(request.url)
        if self.error is not None:
            raise self.error
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(self.certs).encode()
        response.headers["Content-Type"] = "application/json; charset=UTF-8"
        response.url = request.url
        response.request = request
        return response


def install_cert_endpoint(monkeypatch: pytest.MonkeyPatch) -> CertEndpoint:
    """Serve the certificates from here for the rest of the test."""
    endpoint = CertEndpoint()
    # Patching the adapter's send (not google-auth or firebase-admin) keeps everything above
    # the socket real, cachecontrol's adapter included. No Cache-Control header is sent, so
    # nothing is cached and each test sees its own certificates.
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", endpoint.send)
    return endpoint
