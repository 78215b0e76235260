"""The OpenAPI document changes only on purpose (issue 28 generated it from types).

tests/api/openapi_before.json was the document as written by hand, committed before any of it
moved, and the generated one matched it (commit cd0f3f9); since then it is rewritten only with
a deliberate change of the API, in that change's commit (issue 29: `verification`,
`clientReports`, `serverVerified`, the appointment id alphabet, `room_conflict`, the one 403 for
unknown ids, https-only avatars, event_sync's refusals). Every path, operation, webhook and
security scheme of the live document must equal it
once each `$ref` is replaced by what it names, on both sides: moving a schema into
`components` or renaming a component is no difference, a change to what a path accepts or
answers is. The one other liberty: `required` is a set in JSON Schema, compared as one (a
generated schema lists its fields in the order the answer sends them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.api import openapi

BEFORE_PATH = Path(__file__).with_name("openapi_before.json")
BEFORE: dict[str, Any] = json.loads(BEFORE_PATH.read_text())
# The live document as a client reads it (tuples become lists, shared objects copies).
LIVE: dict[str, Any] = json.loads(json.dumps(openapi.DOCUMENT))
PREFIX = "#/components/schemas/"


def resolved(node: Any, document: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """`node` with every schema `$ref` replaced, recursively, by the schema it names."""
    if isinstance(node, list):
        return [resolved(item, document, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(PREFIX):
        name = ref.removeprefix(PREFIX)
        assert name not in seen, f"recursive schema {name}"
        target = document["components"]["schemas"][name]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return resolved({**target, **rest}, document, (*seen, name))
    return {
        key: sorted(value) if key == "required" and isinstance(value, list) else value
        for key, value in ((k, resolved(v, document, seen)) for k, v in node.items())
    }


def _operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(path, method) for path, item in document["paths"].items() for method in item]


def test_the_same_paths_and_methods() -> None:
    assert sorted(_operations(LIVE)) == sorted(_operations(BEFORE))


@pytest.mark.parametrize("path,method", _operations(BEFORE))
def test_each_operation_is_unchanged(path: str, method: str) -> None:
    before = resolved(BEFORE["paths"][path][method], BEFORE)
    live = resolved(LIVE["paths"].get(path, {}).get(method), LIVE)
    assert live == before


def test_the_webhooks_info_and_security_are_unchanged() -> None:
    for key in ("openapi", "info"):
        assert LIVE[key] == BEFORE[key]
    assert resolved(LIVE["webhooks"], LIVE) == resolved(BEFORE["webhooks"], BEFORE)
    security = LIVE["components"]["securitySchemes"]
    assert security == BEFORE["components"]["securitySchemes"]


def test_every_component_resolves() -> None:
    """No dangling `$ref` (resolving the whole document raises on one)."""
    resolved(LIVE["paths"], LIVE)
    resolved(LIVE["components"]["schemas"], LIVE)
