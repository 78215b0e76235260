"""Browser fixtures: Debian's Chromium driven by Playwright against a real server process.

Playwright's own browser downloads are never used: the browser is /usr/bin/chromium (CI
installs Debian's package). Screenshots of each view go to tests/artifacts/ for review.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import repo_root, require


@pytest.fixture(autouse=True)
def clock() -> None:
    """Overrides the frozen clock of tests/conftest.py: the server's clock runs on."""


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = repo_root() / "tests" / "artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    require(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} missing (apt-get install chromium)")
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()
