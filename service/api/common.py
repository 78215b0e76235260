"""What every endpoint shares: JSON errors, the caller's identity, bodies, paging."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response

from service import operators, strict_json
from service.api.throttle import KeyThrottle
from service.auth import Authenticator, AuthError, bearer_token, checked_uid
from service.config import Settings
from service.domain.model import CallStatus
from service.errors import (
    RETRY_AFTER_S,
    AppError,
    BadRequest,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from service.operators import Operator, Who
from service.requests import CursorValue
from service.store.call_lists import Cursor
from service.store.db import DatabaseUnavailable

T = TypeVar("T")
log = logging.getLogger("service.api")

MAX_PAGE = 200
DEFAULT_PAGE = 50


_JSON = msgspec.json.Encoder()


class JSONResponse(StarletteJSONResponse):
    """Every JSON answer of the API, encoded by msgspec (the same compact UTF-8 JSON as
    Starlette's; json.dumps took a seventh of a list page's time)."""

    def render(self, content: Any) -> bytes:
        return _JSON.encode(content)


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, "error": code, **extra}, status_code=status)


async def app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    response = error_response(exc.status, exc.code, exc.message, **exc.extra)
    if isinstance(exc, Unavailable):
        response.headers["Retry-After"] = RETRY_AFTER_S
    elif isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = exc.retry_after
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = "Not found" if exc.status_code == 404 else str(exc.detail)
    response = error_response(exc.status_code, codes.get(exc.status_code, "http_error"), message)
    # 405 carries `Allow`; keep whatever headers Starlette attached.
    response.headers.update(exc.headers or {})
    return response


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def in_thread(fn: Callable[[], T]) -> T:
    """Run blocking work (database, token verification) off the event loop."""
    try:
        return await run_in_threadpool(fn)
    except DatabaseUnavailable:
        raise Unavailable(
            "Database is unavailable, try again shortly", "database_unavailable"
        ) from None


def _verify(authenticator: Authenticator, header: str | None) -> str:
    try:
        # Checked here too, whatever verifier is installed: a uid reaches queries only if
        # it can name a user.
        return checked_uid(authenticator.verify(bearer_token(header)))
    except AuthError as exc:
        refusal = Unavailable if exc.http_status == Unavailable.status else Unauthorized
        raise refusal(exc.message, exc.code) from None


# Threads for verifiers that may wait on the network (Firebase's certificate fetch, bounded by
# FIREBASE_HTTP_TIMEOUT): a stalled fetch then holds these, never the database's threads
# (whose number is DB_POOL_SIZE, app.py).
AUTH_THREADS = 8


def _auth_threads(request: Request) -> anyio.CapacityLimiter:
    # One per app, made on its event loop at first use.
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "auth_threads", None)
    if limiter is None:
        limiter = request.app.state.auth_threads = anyio.CapacityLimiter(AUTH_THREADS)
    return limiter


async def as_caller(request: Request, work: Callable[[str], T]) -> T:
    """Verify the caller's ID token, then run `work(uid)`.

    Authentication runs first, so a request with a bad token and a bad body is a 401. A
    verifier that cannot block (dev tokens) runs in the same trip to a database thread as the
    work (one hand-off instead of two); one that may wait on the network (Firebase) runs on
    threads of its own first, so Google's certificates never hold up the database's threads.
    """
    header = request.headers.get("authorization")
    authenticator: Authenticator = request.app.state.authenticator
    if getattr(authenticator, "blocks_on_network", False):
        uid = await anyio.to_thread.run_sync(
            _verify, authenticator, header, limiter=_auth_threads(request)
        )
        return await in_thread(lambda: work(uid))
    return await in_thread(lambda: work(_verify(authenticator, header)))


def require_bearer_key(request: Request, key: str, code: str, what: str) -> None:
    """A static shared key in `Authorization: Bearer ...`, compared in constant time."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized(f"Missing {what}", "missing_token")
    if not hmac.compare_digest(value.strip().encode(), key.encode()):
        raise Forbidden(f"Invalid {what}", code)


def require_admin(request: Request, *, write: bool = False) -> Operator:
    """The operator whose admin key the request carries; `write`: a read-write key."""
    keys = settings_of(request).admin_keys
    if not keys:
        raise NotFound(
            "Admin API is disabled: set ADMIN_API_KEYS or ADMIN_API_KEY", "admin_api_disabled"
        )
    # Wrong keys are logged and throttled per client address (service/api/throttle.py).
    address = client_address(request) or "unknown"
    rejected: KeyThrottle = request.app.state.admin_key_throttle
    wait = rejected.wait_s(address)
    if wait:
        raise TooManyRequests("Too many wrong admin keys from this address; wait", retry_after=wait)
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("Missing admin key", "missing_token")
    operator = operators.identify(keys, value.strip())
    if operator is None:
        rejected.failed(address, "admin key", request.url.path)
        raise Forbidden("Invalid admin key", "invalid_admin_key")
    if write and not operator.can_write:
        raise Forbidden(f"The admin key of {operator.name} is read-only", "read_only_admin_key")
    return operator


def client_address(request: Request) -> str | None:
    """The request's client address (the proxy's forwarded one when uvicorn is told to trust
    that proxy), as the audit trail records it."""
    return request.client.host if request.client else None


def operator_who(operator: Operator, request: Request) -> Who:
    """The operator as the audit trail names them, and where the request came from."""
    return Who(operator.name, client_address(request))


def user_who(uid: str, request: Request) -> Who:
    return Who(uid, client_address(request))


def parse_json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise BadRequest("Request body must be a JSON object", "invalid_json")
    try:
        return strict_json.loads_object(raw)
    except strict_json.InvalidJson as exc:
        raise BadRequest(f"Request body is not accepted: {exc}", "invalid_json") from None


async def json_object(request: Request) -> dict[str, Any]:
    return parse_json_object(await request.body())


def status_filter(request: Request) -> CallStatus | None:
    raw = request.query_params.get("status")
    if raw is None or raw == "":
        return None
    try:
        return CallStatus(raw)
    except ValueError:
        allowed = ", ".join(s.value for s in CallStatus)
        raise BadRequest(f"status must be one of {allowed}", "invalid_query") from None


def page_limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return DEFAULT_PAGE
    if not re.fullmatch(r"[0-9]{1,3}", raw) or not 1 <= int(raw) <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}", "invalid_query")
    return int(raw)


def encode_cursor(cursor: Cursor | None) -> str | None:
    if cursor is None:
        return None
    raw = json.dumps([cursor.created_at, cursor.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def page_cursor(request: Request) -> Cursor | None:
    raw = request.query_params.get("cursor")
    if raw is None or raw == "":
        return None
    try:
        decoded = strict_json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        # Strict: `true` is no creation time, although Python's bool is an int.
        created_at, call_id = msgspec.convert(decoded, CursorValue, strict=True)
    except (ValueError, binascii.Error, msgspec.ValidationError):
        raise BadRequest("cursor is not one this service returned", "invalid_cursor") from None
    return Cursor(created_at, call_id)
