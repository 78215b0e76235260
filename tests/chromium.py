"""Debian's Chromium for the browser tests (tests/browser, tests/clients), driven by Playwright.

Never Playwright's own browser download. The flags keep Chromium from reaching out to Google's
services, which this machine's closed network refuses many times a second.
"""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
