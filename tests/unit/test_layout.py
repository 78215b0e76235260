"""Where things live: small modules, each named where a newcomer looks first.

No module of the service is over 500 lines (a longer one is several concepts), and every
module appears in the README's Layout section, by its path or by its file name in its
package's row, so the table stays the map of the code rather than a memory of it.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "service"
MAX_LINES = 500


def _modules() -> list[Path]:
    return sorted(p for p in SERVICE.rglob("*.py") if "migrations" not in p.parts)


def _layout_section() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Layout\n", 1)[1]
    return section.split("\n## ", 1)[0]


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_module_is_on_the_map() -> None:
    layout = _layout_section()
    named = set(re.findall(r"`([^`]+)`", layout))
    missing = []
    for path in _modules():
        relative = path.relative_to(ROOT)
        if path.name == "__init__.py" or path.name == "__main__.py":
            continue
        package = f"{relative.parent}/"
        in_row = any(
            f"`{package}`" in line and f"`{path.name}`" in line for line in layout.splitlines()
        )
        if str(relative) not in named and not in_row:
            missing.append(str(relative))
    assert missing == []
