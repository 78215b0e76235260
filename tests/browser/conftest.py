"""Browser fixtures: Debian's Chromium driven by Playwright against a real server process.

Playwright's own browser downloads are never used: the browser is /usr/bin/chromium (CI
installs Debian's package). Screenshots of each view go to tests/artifacts/ for review.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import repo_root


@pytest.fixture(autouse=True)
def clock() -> None:
    """Overrides the frozen clock of tests/conftest.py: the server's clock runs on."""


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = repo_root() / "tests" / "artifacts"
    path.mkdir(exist_ok=True)
    return path
