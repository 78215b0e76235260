"""Tests for service.receiver.signing against the standardwebhooks package and fixed vectors."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from service.clock import now_s
from service.receiver.signing import SignatureError, secret_key, sign, verify

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 16 + bytes(range(100, 116))).decode()
MSG_ID = "evt_3f0c2f7e-5b1d-4c59-9a43-0b6f2d0e2a11"
NOW = 1_795_504_319
BODY = b'{"version":1,"type":"room.created"}'


def headers(signature: str, timestamp: int = NOW, msg_id: str = MSG_ID) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_hand_computed_vector() -> None:
    signed = f"{MSG_ID}.{NOW}.".encode() + BODY
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    assert sign(SECRET, MSG_ID, NOW, BODY) == "v1," + expected
    assert verify([SECRET], headers("v1," + expected), BODY, NOW) == MSG_ID


def test_fixed_vector_from_the_standard_webhooks_reference() -> None:
    # The example secret, id, timestamp and payload of the Standard Webhooks test suites.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    timestamp = 1614265330
    payload = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(secret, msg_id, timestamp, payload) == expected
    assert verify([secret], headers(expected, timestamp, msg_id), payload, timestamp) == msg_id


@settings(max_examples=50, deadline=None)
@given(
    key=st.binary(min_size=24, max_size=64),
    body=st.text(max_size=300).map(str.encode),
    msg_id=st.from_regex(r"evt_[a-z0-9-]{1,40}", fullmatch=True),
)
def test_interoperates_with_the_standardwebhooks_package(
    key: bytes, body: bytes, msg_id: str
) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    when = datetime.fromtimestamp(NOW, tz=UTC)
    theirs = Webhook(secret).sign(msg_id, when, body.decode())
    assert verify([secret], headers(theirs, msg_id=msg_id), body, NOW) == msg_id
    ours = sign(secret, msg_id, NOW, body)
    assert ours == theirs


def test_the_package_accepts_our_signature_at_the_current_time() -> None:
    now = now_s()  # the package reads the real clock, which the frozen one started from
    signature = sign(SECRET, MSG_ID, now, BODY)
    assert Webhook(SECRET).verify(BODY, headers(signature, now), json_parse=False) is None


def test_rotation_any_signature_may_match_any_secret() -> None:
    old = sign(OLD_SECRET, MSG_ID, NOW, BODY)
    new = sign(SECRET, MSG_ID, NOW, BODY)
    assert verify([SECRET], headers(f"{old} {new}"), BODY, NOW) == MSG_ID
    assert verify([OLD_SECRET, SECRET], headers(old), BODY, NOW) == MSG_ID
    assert verify([SECRET, OLD_SECRET], headers(f"v1a,xyz {old}"), BODY, NOW) == MSG_ID


def test_header_names_are_case_insensitive() -> None:
    given_headers = {k.title(): v for k, v in headers(sign(SECRET, MSG_ID, NOW, BODY)).items()}
    assert verify([SECRET], given_headers, BODY, NOW) == MSG_ID


@pytest.mark.parametrize("skew", [-300, 300, 0, -1, 1])
def test_timestamp_inside_the_tolerance(skew: int) -> None:
    signature = sign(SECRET, MSG_ID, NOW + skew, BODY)
    assert verify([SECRET], headers(signature, NOW + skew), BODY, NOW) == MSG_ID


@pytest.mark.parametrize("skew", [-301, 301, -86400])
def test_timestamp_outside_the_tolerance(skew: int) -> None:
    signature = sign(SECRET, MSG_ID, NOW + skew, BODY)
    with pytest.raises(SignatureError, match="tolerance"):
        verify([SECRET], headers(signature, NOW + skew), BODY, NOW)


def good() -> dict[str, str]:
    return headers(sign(SECRET, MSG_ID, NOW, BODY))


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()},
        {"webhook-signature": "v2," + sign(SECRET, MSG_ID, NOW, BODY)[3:]},
        {"webhook-signature": "v1,@@not-base64@@"},
        {"webhook-signature": "garbage"},
        {"webhook-signature": ""},
        {"webhook-signature": " ".join(["v1,AAAA"] * 17)},
        {"webhook-id": "evt_other"},
        {"webhook-id": ""},
        {"webhook-id": "x" * 300},
        {"webhook-timestamp": str(NOW + 1)},
        {"webhook-timestamp": "soon"},
        {"webhook-timestamp": "1.5e9"},
        {"webhook-timestamp": "-1"},
        {"webhook-timestamp": "١٧٩٥٥٠٤٣١٩"},  # non-ASCII digits
    ],
)
def test_rejected_headers(change: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        verify([SECRET], good() | change, BODY, NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers(missing: str) -> None:
    given_headers = {k: v for k, v in good().items() if k != missing}
    with pytest.raises(SignatureError, match=f"missing {missing}"):
        verify([SECRET], given_headers, BODY, NOW)


def test_tampered_body_or_wrong_secret() -> None:
    with pytest.raises(SignatureError, match="no matching"):
        verify([SECRET], good(), BODY + b" ", NOW)
    with pytest.raises(SignatureError, match="no matching"):
        verify([OLD_SECRET], good(), BODY, NOW)
    with pytest.raises(SignatureError):
        verify([], good(), BODY, NOW)


def test_secret_key_accepts_unpadded_and_rejects_garbage() -> None:
    assert secret_key("whsec_" + base64.b64encode(KEY).decode().rstrip("=")) == KEY
    with pytest.raises(ValueError):
        secret_key("whsec_!!!")
    with pytest.raises(ValueError):
        secret_key("whsec_")
