"""The field types every edge shares: one `Id`, date, time, timestamp and bounded text.

Each is a msgspec type with its constraints attached, so the same declaration validates a
request (service/requests.py) and writes its JSON Schema into the OpenAPI document. Patterns
are anchored because JSON Schema and msgspec both search rather than match. Text is also
free of NUL and lone surrogates: service/strict_json.py refuses them in every document.
"""

from __future__ import annotations

import re
from typing import Annotated

from msgspec import Meta

# An id anywhere: a uid, an appointment's, a call's, and the ids in Prosody's events.
MAX_ID_CHARS = 128
ID_REGEX = rf"^[A-Za-z0-9_.:@-]{{1,{MAX_ID_CHARS}}}$"
# The rule in words, for error messages and the OpenAPI document.
ID_RULE = f"1-{MAX_ID_CHARS} characters of letters, digits and _.:@-"
# An appointment id names its Jitsi room, `appointment_{id}` lower-cased: letters, digits, `_`
# and `-` are safe in a room name, a URL path and an XMPP address. Two ids that differ only in
# letter case would share a room, so the store also keeps the room name unique (room_key).
APPOINTMENT_ID_REGEX = rf"^[A-Za-z0-9_-]{{1,{MAX_ID_CHARS}}}$"
# What may reach a Jitsi token's `avatar`: an https URL with a host, no space or control
# character (a `javascript:` or `data:` URL would be handed to every participant's browser).
HTTPS_URL_REGEX = r"^https://[^\s\x00-\x1f\x7f/?#]+([/?#][^\s\x00-\x1f\x7f]*)?$"
DATE_REGEX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
TIME_REGEX = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"

# 2017-07-14 .. 2100-01-01 in epoch milliseconds: a clock outside this range is broken, and
# the bounds keep arithmetic on times far from overflow in every database.
MIN_TIME_MS = 1_500_000_000_000
MAX_TIME_MS = 4_102_444_800_000

# The same rules as compiled patterns, for values that arrive outside a document (paths,
# query strings). fullmatch: `$` alone would also accept a trailing newline.
ID_PATTERN = re.compile(ID_REGEX[1:-1])
APPOINTMENT_ID_PATTERN = re.compile(APPOINTMENT_ID_REGEX[1:-1])
HTTPS_URL_PATTERN = re.compile(HTTPS_URL_REGEX[1:-1])
DATE_PATTERN = re.compile(DATE_REGEX[1:-1])
TIME_PATTERN = re.compile(TIME_REGEX[1:-1])

Id = Annotated[
    str,
    Meta(
        pattern=ID_REGEX,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description=f"1-{MAX_ID_CHARS} of A-Z a-z 0-9 _ . : @ -",
    ),
]
AppointmentId = Annotated[
    str,
    Meta(
        pattern=APPOINTMENT_ID_REGEX,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description=f"1-{MAX_ID_CHARS} of A-Z a-z 0-9 _ -",
    ),
]
Date = Annotated[str, Meta(pattern=DATE_REGEX, description="YYYY-MM-DD")]
Time = Annotated[str, Meta(pattern=TIME_REGEX, description="HH:MM, 24-hour")]
TimestampMs = Annotated[
    int, Meta(ge=MIN_TIME_MS, le=MAX_TIME_MS, description="Unix epoch milliseconds")
]


# Bounded text. A name must also hold a non-space character.
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"\S")]
Text200 = Annotated[str, Meta(max_length=200)]
Email = Annotated[str, Meta(max_length=320)]
Url = Annotated[str, Meta(max_length=2048)]
HttpsUrl = Annotated[
    str, Meta(max_length=2048, pattern=HTTPS_URL_REGEX, description="An https:// URL")
]
ZoneName = Annotated[str, Meta(max_length=64, description="IANA time zone name")]


def is_https_url(value: str | None) -> bool:
    """Whether `value` may be handed to browsers as an image address (a token's avatar)."""
    return value is not None and len(value) <= 2048 and bool(HTTPS_URL_PATTERN.fullmatch(value))
