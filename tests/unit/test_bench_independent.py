"""bench/ and harness/ never import the test suite: what a bench shares with the tests lives in
harness/ (see its docstring), so a bench needs neither tests/ nor pytest's conftest."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def imports_of_tests(source: str) -> list[str]:
    """The `tests` modules (the package or anything under it) that `source` imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [name for name in names if name == "tests" or name.startswith("tests.")]
    return found


@pytest.mark.parametrize(
    "source",
    [
        "import tests",
        "import os, tests.clock",
        "from tests import conftest",
        "from tests.prosody.prosody_harness import Stack",
        "def f():\n    from tests.eventstream import Stream",
        "try:\n    import tests.conftest as c\nexcept ImportError:\n    pass",
    ],
)
def test_the_check_sees_an_import_of_tests(source: str) -> None:
    assert imports_of_tests(source)


@pytest.mark.parametrize(
    "source",
    ["import testsuite", "from harness.prosody import Stack", "from . import tests", "x = 'tests'"],
)
def test_the_check_ignores_other_names(source: str) -> None:
    assert imports_of_tests(source) == []


@pytest.mark.parametrize("folder", ["bench", "harness"])
def test_no_module_imports_tests(folder: str) -> None:
    files = sorted((REPO / folder).rglob("*.py"))
    assert files, f"no Python files in {folder}/"
    offenders = {
        str(path.relative_to(REPO)): names
        for path in files
        if (names := imports_of_tests(path.read_text()))
    }
    assert offenders == {}, f"imports of tests/ (move what is shared to harness/): {offenders}"
