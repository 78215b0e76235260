"""Request bodies as types: one msgspec Struct per endpoint body, built on service/fields.py.

`decode` turns a parsed document (service/strict_json.py) into the Struct or raises a 400
naming the field; the OpenAPI document takes its request schemas from these classes.
Unknown fields are ignored, so a newer client can send more.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import msgspec

from service.domain.model import Action, AppointmentStatus
from service.errors import BadRequest
from service.fields import Date, Email, HttpsUrl, Id, Name, Text200, Time, ZoneName

S = TypeVar("S", bound=msgspec.Struct)


class InitiateRequest(msgspec.Struct, rename="camel"):
    """Unknown fields are ignored"""

    appointment_id: Id


class StatusRequest(msgspec.Struct):
    """Unknown fields (such as `role`) are ignored"""

    action: Action


class UserUpsert(msgspec.Struct, rename="camel"):
    """Unknown fields are ignored"""

    first_name: Name
    last_name: Text200 | None = None
    email: Email | None = None
    profile_image_url: HttpsUrl | None = None
    is_active: bool = True


class AppointmentUpsert(msgspec.Struct, rename="camel"):
    """Unknown fields are ignored; `timezone` is an IANA name, UTC when absent"""

    doctor_uid: Id
    patient_uid: Annotated[Id, msgspec.Meta(description="Must differ from doctorUid")]
    appointment_date: Annotated[Date, msgspec.Meta(extra_json_schema={"format": "date"})]
    start_time: Time
    end_time: Annotated[Time, msgspec.Meta(description="At or before startTime: ends the next day")]
    status: AppointmentStatus
    timezone: ZoneName | None = None


# The decoded `cursor` of a list: [created_at ms, call id] (api/common.py encodes it).
CursorValue = tuple[Annotated[int, msgspec.Meta(ge=0, lt=2**62)], Id]

# Their JSON Schemas are the OpenAPI document's request bodies (service/api/openapi.py).
REQUEST_MODELS: tuple[type[msgspec.Struct], ...] = (
    InitiateRequest,
    StatusRequest,
    UserUpsert,
    AppointmentUpsert,
)

_FIELD = re.compile(r"(?:at `\$\.([A-Za-z0-9_]+)`|missing required field `([A-Za-z0-9_]+)`)")


def problem(exc: msgspec.ValidationError) -> tuple[str, str]:
    """(field, kind) of a validation error; kind is `missing`, `type` or `value`."""
    message = str(exc)
    found = _FIELD.search(message)
    field = next((g for g in found.groups() if g), "") if found else ""
    if "missing required field" in message:
        return field, "missing"
    if message.startswith("Expected `") and ", got `" in message:
        return field, "type"
    return field, "value"


def decode(
    model: type[S],
    data: Any,
    code: str,
    codes: Mapping[tuple[str, str], str] | None = None,
) -> S:
    """`data` as `model`, or BadRequest(`code`, or `codes[(field, kind)]` where given)."""
    try:
        return msgspec.convert(data, model, strict=True)
    except msgspec.ValidationError as exc:
        field, kind = problem(exc)
        raise BadRequest(f"Invalid body: {exc}", (codes or {}).get((field, kind), code)) from None
