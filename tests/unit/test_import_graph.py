"""The import graph of service/: no cycle, and the HTTP edge imported by nothing below it.

Read with `ast`, not by importing: every `import service.x` and `from service.x import y`
(y a submodule or a name in x) at any depth of a module, TYPE_CHECKING blocks included, since
a cycle there is a cycle of meaning even when Python tolerates it at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "service"
# The one allowed loop: service.auth's factory imports the authenticator the settings name,
# inside the function (dev mode never loads firebase-admin), and each implementation imports
# the package's AuthError. A plug-in choice, not a tangle; nothing else may join it.
DEFERRED_PLUGINS = {("service.auth", "service.auth.dev"), ("service.auth", "service.auth.firebase")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SERVICE.rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The service modules `path` imports (packages count as their __init__)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            found.add(source)
            found |= {f"{source}.{alias.name}" for alias in node.names}
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(path, name, known) for name, path in modules.items()}
    for source, target in DEFERRED_PLUGINS:
        graph[source].discard(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path that starts and ends on the same module, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_graph_reads_submodule_imports() -> None:
    graph = import_graph()
    assert "service.store.rows" in graph["service.calls"]
    assert "service.api.common" in graph["service.api.video_calls"]


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_store_and_webhooks_do_not_import_the_http_edge() -> None:
    offenders = {
        f"{name} -> {target}"
        for name, targets in import_graph().items()
        if name.startswith(("service.store", "service.webhooks"))
        for target in targets
        if target == "service.api" or target.startswith("service.api.")
    }
    assert offenders == set()
