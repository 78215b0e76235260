"""Parsing `Authorization: Bearer <token>` and the AuthError contract the web layer relies on."""

from __future__ import annotations

import pytest

from service.auth import MAX_TOKEN_LENGTH, AuthError, bearer_token


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("  BEARER   abc.def.ghi  ", "abc.def.ghi"),
    ],
)
def test_bearer_token(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "abc.def.ghi", "Bearer a b"],
)
def test_missing_or_malformed(header: str | None) -> None:
    with pytest.raises(AuthError) as info:
        bearer_token(header)
    assert info.value.code == "missing_token"
    assert info.value.http_status == 401


def test_oversized_token() -> None:
    with pytest.raises(AuthError) as info:
        bearer_token("Bearer " + "a" * (MAX_TOKEN_LENGTH + 1))
    assert info.value.code == "invalid_token"


def test_error_carries_code_and_safe_message() -> None:
    error = AuthError("auth_unavailable")
    assert (error.code, error.http_status) == ("auth_unavailable", 503)
    assert error.message and "auth_unavailable" in str(error)
    assert AuthError("invalid_token", "custom").message == "custom"
