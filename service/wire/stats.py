"""A doctor's totals as GET /api/video-calls/stats tells them: every call, and beside them the
calls the server measured, so nobody bills a client-reported minute by accident."""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from msgspec import Meta

from service.wire.base import CALL_STATUSES, Count, Shape, const

_BY_STATUS: dict[str, Any] = {
    "type": "object",
    "properties": {s: {"type": "integer", "minimum": 0} for s in CALL_STATUSES},
    "required": CALL_STATUSES,
    "additionalProperties": False,
}


class VerifiedStats(Shape):
    """The same totals over the calls the server measured (`verification: server`) only"""

    total_calls: Annotated[Count, Meta(description="COMPLETED calls the server measured")]
    total_duration: Annotated[Count, Meta(description="Seconds, over those calls")]
    avg_duration: Annotated[
        float | None, Meta(description="Seconds, one decimal; null without any")
    ]
    by_status: Annotated[Any, Meta(extra_json_schema=_BY_STATUS)]


class Stats(Shape):
    message: Annotated[str, const("Video call statistics retrieved successfully")]
    total_calls: Annotated[Count, Meta(description="COMPLETED calls")]
    total_duration: Annotated[Count, Meta(description="Seconds, over COMPLETED calls")]
    avg_duration: Annotated[
        float | None, Meta(description="Seconds, one decimal; null without COMPLETED calls")
    ]
    avg_patient_wait: Annotated[
        float | None,
        Meta(
            description="Seconds the patient waited, one decimal, over COMPLETED calls "
            "with server-side presence; null without any"
        ),
    ]
    # One count per status, every status present (keys are the statuses themselves).
    by_status: Annotated[Any, Meta(extra_json_schema=_BY_STATUS)]
    server_verified: VerifiedStats


def _one_decimal(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


class StatsLike(Protocol):
    """A doctor's totals as the use case returns them (service.calls.Stats)."""

    @property
    def total_calls(self) -> int: ...
    @property
    def total_duration(self) -> int: ...
    @property
    def avg_duration(self) -> float | None: ...
    @property
    def avg_patient_wait(self) -> float | None: ...
    @property
    def by_status(self) -> dict[str, int]: ...


def stats(every: StatsLike, verified: StatsLike) -> Stats:
    return Stats(
        message="Video call statistics retrieved successfully",
        total_calls=every.total_calls,
        total_duration=every.total_duration,
        avg_duration=_one_decimal(every.avg_duration),
        avg_patient_wait=_one_decimal(every.avg_patient_wait),
        by_status=every.by_status,
        server_verified=VerifiedStats(
            total_calls=verified.total_calls,
            total_duration=verified.total_duration,
            avg_duration=_one_decimal(verified.avg_duration),
            by_status=verified.by_status,
        ),
    )
