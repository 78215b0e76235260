"""What every wire shape shares: times, enums and constants as schema facts, and the base Struct.

A field's JSON Schema comes from its annotation: `Annotated[str, Meta(...)]`. The facts a
Python type cannot carry (an enum of plain strings, a constant, a format) travel as
`extra_json_schema`, which msgspec merges into the generated schema.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Final, overload

import msgspec
from msgspec import Meta

from service.domain.model import AppointmentStatus, CallStatus, Role, Settled, Verification
from service.fields import DATE_REGEX, TIME_REGEX

# iso(): ISO-8601 in UTC, always with milliseconds and "Z".
ISO_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
DATE_PATTERN: Final = DATE_REGEX
TIME_PATTERN: Final = TIME_REGEX

CALL_STATUSES: Final = [s.value for s in CallStatus]
APPOINTMENT_STATUSES: Final = [s.value for s in AppointmentStatus]
ROLES: Final = [r.value for r in Role]
PARTIES: Final = [Role.DOCTOR.value, Role.PATIENT.value]


@overload
def iso(ms: int) -> str: ...
@overload
def iso(ms: None) -> None: ...
@overload
def iso(ms: int | None) -> str | None: ...
def iso(ms: int | None) -> str | None:
    """`2025-10-18T10:30:00.000Z`. Plain integer formatting: this runs for every time field
    of every row of a list, and datetime + strftime was the list's hottest frame."""
    if ms is None:
        return None
    t = time.gmtime(ms // 1000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{ms % 1000:03d}Z"
    )


def one_of(values: list[Any], **extra: Any) -> Meta:
    """A string (or null, beside `| None`) that is one of `values`."""
    return Meta(extra_json_schema={"enum": values}, **extra)


def const(value: str) -> Meta:
    return Meta(extra_json_schema={"const": value})


Iso = Annotated[str, Meta(pattern=ISO_PATTERN, extra_json_schema={"format": "date-time"})]
Date = Annotated[str, Meta(pattern=DATE_PATTERN)]
Clock = Annotated[str, Meta(pattern=TIME_PATTERN)]
Count = Annotated[int, Meta(ge=0)]
CallStatusValue = Annotated[str, one_of(CALL_STATUSES)]
AppointmentStatusValue = Annotated[str, one_of(APPOINTMENT_STATUSES)]
Party = Annotated[str, one_of(PARTIES)]
RecordingMode = Annotated[str, one_of(["file", "stream"])]
VerificationValue = Annotated[
    str,
    one_of([v.value for v in Verification]),
    Meta(
        description="Who measured status, times and duration: `server` (Prosody's events) or "
        "`client_reported` (browsers' reports only, PRESENCE_SOURCE=clients)"
    ),
]

SettledValue = Annotated[
    Annotated[str, one_of([v.value for v in Settled])] | None,
    Meta(
        description="How settled a final call is: `final`, or `provisional` while a Prosody "
        "host has not been heard past the decision, so late events may still correct it "
        "(docs/events.md, Late evidence); null while the call is open"
    ),
]


class Shape(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """Base of the closed shapes (`additionalProperties: false`); no docstring below it
    becomes a schema description unless it is one."""


class OpenShape(msgspec.Struct, rename="camel", kw_only=True):
    """Base of the shapes whose schema leaves other properties open."""
