"""Errors a use case can raise; the web layer turns each into `{"message", "error"}` JSON."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class Unauthorized(AppError):
    status = 401
    code = "invalid_token"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "invalid_transition"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


# Seconds a client (Prosody's queue, a browser) should wait before retrying a 503.
RETRY_AFTER_S = "5"


class Unavailable(AppError):
    """A fault on our side that a retry can cure (database down, disk full): 503 + Retry-After."""

    status = 503
    code = "unavailable"


class TooManyRequests(AppError):
    """A caller that keeps failing (wrong admin keys) waits: 429 + Retry-After."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, code: str | None = None, *, retry_after: int) -> None:
        super().__init__(message, code)
        self.retry_after = str(max(1, retry_after))
