"""No module of `service/` uses another module's private names (a leading underscore).

A name a module shares is public; one it keeps to itself starts with `_`. Reaching into
another module's `_name` (issue: incremental.py imported six of presence.py's) couples to
what may change without notice. A scan of every module under `service/` with `ast` finds
`from service... import _name` and `module._name` where `module` was imported from `service`.
"""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "service"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(root: Path, dotted: str) -> bool:
    """Whether `dotted` (service.x.y) names a module or package under `root`."""
    path = root.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _module_aliases(root: Path, tree: ast.Module) -> dict[str, str]:
    """Local names bound to service modules by this module's imports."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "service" and alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "service":
                continue
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                if _is_module(root, dotted):
                    aliases[alias.asname or alias.name] = dotted
    return aliases


def private_uses(root: Path) -> list[str]:
    """Every use of another service module's private name under `root`, as path:line text."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(root.parent)
        aliases = _module_aliases(root, tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] == "service":
                    for alias in node.names:
                        if _private(alias.name):
                            found.append(f"{where}:{node.lineno} {node.module}.{alias.name}")
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _private(node.attr)
            ):
                found.append(f"{where}:{node.lineno} {aliases[node.value.id]}.{node.attr}")
    return found


def test_no_service_module_uses_another_modules_private_names() -> None:
    assert private_uses(SERVICE) == []


def test_the_scan_finds_both_kinds_of_use(tmp_path: Path) -> None:
    root = tmp_path / "service"
    (root / "domain").mkdir(parents=True)
    for package in (root, root / "domain"):
        (package / "__init__.py").write_text("")
    (root / "domain" / "rules.py").write_text("_hidden = 1\nshown = 2\n__all__ = ['shown']\n")
    (root / "user.py").write_text(
        "from service.domain import rules\n"
        "from service.domain.rules import _hidden, shown\n"
        "import service.domain.rules as r\n"
        "from service.domain.rules import __all__\n"
        "x = rules._hidden + r._hidden + rules.shown + shown\n"
        "class C:\n"
        "    def m(self) -> int:\n"
        "        return self._own\n"
    )
    assert private_uses(root) == [
        "service/user.py:2 service.domain.rules._hidden",
        "service/user.py:5 service.domain.rules._hidden",
        "service/user.py:5 service.domain.rules._hidden",
    ]
