"""Every query lives in service/store: no other module of service/ imports peewee, calls a
model's query methods, builds peewee expressions (`fn.`, `SQL(`, `.where(`...) or holds a
string that reads as SQL. Use cases and the webhook logic ask store functions instead.

The scan reads each module with `ast`, so comments and docstrings may speak of queries freely.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "service"


# Query builders peewee alone has: flagged on whatever they are called on.
QUERY_METHODS = frozenset(
    {
        "select",
        "insert_many",
        "insert_from",
        "execute_sql",
        "get_or_none",
        "get_by_id",
        "where",
        "order_by",
        "group_by",
        "for_update",
        "on_conflict",
        "on_conflict_ignore",
        "returning",
        "bulk_create",
        "bulk_update",
    }
)
# Names that other objects have too (dict.get, list.insert, set.update): flagged only when
# called on a model class imported from service.store.models.
MODEL_METHODS = frozenset(
    {"insert", "update", "delete", "get", "create", "replace", "alias", "raw", "delete_by_id"}
)
SQL_TEXT = re.compile(
    r"\bSELECT\b.+\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\"?\w+\"?\s+SET\b|\bDELETE\s+FROM\b"
    r"|\bCREATE\s+(UNIQUE\s+)?(TABLE|INDEX)\b|\bALTER\s+TABLE\b|\bDROP\s+TABLE\b|\bTRUNCATE\b",
    re.IGNORECASE | re.DOTALL,
)


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings (of the module, a class, a function)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _models(tree: ast.Module) -> set[str]:
    """Local names of the classes imported from service.store.models."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "service.store.models":
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def _root(node: ast.expr) -> ast.expr:
    """`A` of `A.b.c(...)...`: the name an attribute chain starts from."""
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def offences(source: str) -> list[str]:
    """What in `source` (a module outside service/store) runs or spells a query."""
    tree = ast.parse(source)
    models = _models(tree)
    docstrings = _docstrings(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("peewee", "playhouse"):
                    found.append(f"{line}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in ("peewee", "playhouse"):
                found.append(f"{line}: from {node.module} import")
            elif node.module == "service.store.db" and any(
                a.name in ("current", "database_proxy") for a in node.names
            ):
                found.append(f"{line}: the raw database from service.store.db")
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "fn":
                found.append(f"{line}: fn.{node.attr}")
            elif node.attr == "fn":
                found.append(f"{line}: .fn")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "SQL":
                found.append(f"{line}: SQL(...)")
            elif isinstance(func, ast.Attribute):
                root = _root(func.value)
                model = root.id if isinstance(root, ast.Name) and root.id in models else None
                if func.attr == "SQL" or func.attr in QUERY_METHODS:
                    found.append(f"{line}: .{func.attr}(...)")
                elif model is not None and func.attr in MODEL_METHODS:
                    found.append(f"{line}: {model}...{func.attr}(...)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings and SQL_TEXT.search(node.value):
                found.append(f"{line}: SQL text {node.value[:40]!r}")
        elif isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value
                for v in node.values
                if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
            if SQL_TEXT.search(text):
                found.append(f"{line}: SQL f-string {text[:40]!r}")
    return found


def _modules() -> dict[str, str]:
    return {
        str(path.relative_to(SERVICE)): path.read_text()
        for path in sorted(SERVICE.rglob("*.py"))
        if path.relative_to(SERVICE).parts[0] != "store"
    }


def test_no_module_outside_the_store_queries() -> None:
    modules = _modules()
    assert "webhooks/outbox.py" in modules and "tracking.py" in modules  # the scan reads them
    found = {name: hits for name, source in modules.items() if (hits := offences(source))}
    assert found == {}


# --- the scan itself: each kind of query it must see ----------------------------------------

CAUGHT = {
    "import peewee": "import peewee\n",
    "from peewee": "from peewee import fn\n",
    "playhouse": "from playhouse.pool import PooledSqliteDatabase\n",
    "raw database": "from service.store.db import current\n",
    "select on a model": (
        "from service.store.models import WebhookMessage\nrows = list(WebhookMessage.select())\n"
    ),
    "select on an alias": (
        "from service.store.models import WebhookMessage as M\n"
        "earlier = M.alias('earlier')\n"
        "q = earlier.select(earlier.id)\n"
    ),
    "insert on a model": (
        "from service.store.models import WebhookMessage\nWebhookMessage.insert(id='m').execute()\n"
    ),
    "update on a model": (
        "from service.store.models import WebhookMessage\n"
        "WebhookMessage.update(status='failed').execute()\n"
    ),
    "delete on a model": (
        "from service.store.models import WebhookMessage\nWebhookMessage.delete().execute()\n"
    ),
    "get on a model": (
        "from service.store.models import VideoCall\nrow = VideoCall.get(VideoCall.id == 'c')\n"
    ),
    "get_or_none": "row = anything.get_or_none(x == 1)\n",
    "execute_sql": "db.execute_sql('VACUUM')\n",
    "a where clause": "query = query.where(x)\n",
    "fn": "count = fn.COUNT(x)\n",
    "peewee.fn": "import_free = peewee.fn.EXISTS(q)\n",
    "SQL()": "clause = SQL('1 = 1')\n",
    "select text": "text = 'select id from video_calls where status = %s'\n",
    "insert text": "text = 'INSERT INTO audit_events VALUES (?)'\n",
    "update text": "text = 'UPDATE video_calls SET status = ?'\n",
    "delete text": "text = 'DELETE FROM webhook_messages'\n",
    "an f-string": "text = f'DELETE FROM {table}'\n",
    "truncate": "text = 'TRUNCATE users'\n",
}


@pytest.mark.parametrize("source", CAUGHT.values(), ids=CAUGHT.keys())
def test_the_scan_sees(source: str) -> None:
    assert offences(source)


def test_the_scan_leaves_plain_python_alone() -> None:
    source = '''
"""A docstring may say: SELECT the calls FROM the store, then UPDATE x SET y."""
from service.store import video_calls
from service.store.models import VideoCall

def f(d: dict[str, int], items: list[int], call: VideoCall) -> None:
    """Reads rows; DELETE FROM nothing."""
    d.get("a")
    d.update({"b": 1})
    items.insert(0, 1)
    video_calls.get_call(call.id)
    message = "the call was deleted from the list"
'''
    assert offences(source) == []


def test_the_scan_fails_on_the_old_outbox() -> None:
    """What service/webhooks/outbox.py did before its queries moved (store/outbox.py)."""
    old = """
import peewee
from service.store.models import WebhookCallState, WebhookMessage

def observe(call_id):
    state = WebhookCallState.get_or_none(WebhookCallState.call_id == call_id)

def prune(before_ms):
    return WebhookMessage.delete().where(WebhookMessage.created_at < before_ms).execute()
"""
    assert len(offences(old)) >= 3
