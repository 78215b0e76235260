"""The one JSON reader for everything a client or Prosody sends (bodies, events, cursors).

`json.loads` alone accepts things that later break the service or the record: nesting deep
enough to raise RecursionError, integers of thousands of digits (int() refuses them with
ValueError), lone UTF-16 surrogates ("\\ud83d", which no database can encode), NUL (which
PostgreSQL refuses and SQLite stores), duplicate keys (the signer and the receiver could read
different values) and NaN/Infinity. Here each is a `InvalidJson` naming where it was found,
so every edge answers 400 and the database never sees such a value.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

# Deeper than any body this service accepts (a snapshot is body > rooms > room > occupants >
# occupant: 5 levels), far below Python's recursion limit.
MAX_DEPTH = 16
# 19 digits hold every int64; larger numbers are never a valid value here.
MAX_INT_DIGITS = 19


class InvalidJson(ValueError):
    """The bytes are not a JSON document this service reads; the message says why and where."""


def _fail(message: str) -> NoReturn:
    raise InvalidJson(message)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            _fail(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> NoReturn:
    _fail(f"invalid JSON number {name}")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        _fail(f"integer with more than {MAX_INT_DIGITS} digits")
    return int(digits)


def _bounded_float(text: str) -> float:
    # Floats are parsed by Python's own float(), which never fails on length, but a
    # thousand-digit number is abuse either way.
    if len(text) > 64:
        _fail("number longer than 64 characters")
    return float(text)


def check_text(value: str, where: str) -> None:
    """Valid Unicode (encodable as UTF-8) and no NUL: what every database can store."""
    if "\x00" in value:
        _fail(f"{where or 'value'} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        _fail(f"{where or 'value'} is not valid Unicode (lone surrogate)")


def _walk(value: Any, where: str, depth: int) -> None:
    # Iterative over siblings, recursive over depth, which is bounded by MAX_DEPTH.
    if depth > MAX_DEPTH:
        _fail(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            check_text(key, f"key {path!r}")
            _walk(item, path[:200], depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{where}[{index}]", depth + 1)


def loads(raw: bytes | str) -> Any:
    """Parse `raw` or raise InvalidJson; the result holds only storable values."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_reject_constant,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
        )
    except UnicodeDecodeError:
        _fail("body is not UTF-8")
    except RecursionError:
        _fail(f"nested deeper than {MAX_DEPTH} levels")
    except json.JSONDecodeError as exc:
        _fail(f"not JSON: {exc.msg} at {exc.pos}")
    _walk(data, "", 0)
    return data


def loads_object(raw: bytes | str) -> dict[str, Any]:
    data = loads(raw)
    if not isinstance(data, dict):
        _fail("must be a JSON object")
    return data
