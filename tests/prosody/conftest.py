"""Fixtures for the Prosody suite: one fresh Prosody, receiver and XMPP loop per test, on every
Prosody version the machine has (in CI, a missing one fails instead of skipping)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from harness.prosody import CANDIDATES, Stack, StackFactory, stack

# Small but real option values: tests must not wait minutes for a backoff.
FAST = {
    "video_call_events_timeout": 1,
    "video_call_events_retry_max": 2,
    "video_call_events_snapshot_interval": 0,
}


@pytest.fixture(params=CANDIDATES, ids=[label for label, _ in CANDIDATES])
def prosody_binary(request: pytest.FixtureRequest) -> str:
    label, path = request.param
    if not os.access(path, os.X_OK):
        message = f"Prosody {label} not found at {path} (scripts/install-prosody installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(path)


@pytest.fixture
def make_stack(
    prosody_binary: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[StackFactory]:
    """make_stack(options=..., secret=...) starts Prosody and its receiver for this test."""
    with ExitStack() as exits:
        started: list[Stack] = []

        def make(options: dict[str, Any] | None = None, **kwargs: Any) -> Stack:
            workdir = tmp_path / f"prosody{len(started)}"
            workdir.mkdir()
            options = {**FAST, **(options or {})}
            result = exits.enter_context(stack(prosody_binary, workdir, options, **kwargs))
            started.append(result)
            return result

        yield make
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for result in started:
                print(f"--- Prosody log ({result.prosody.dir}) ---\n{result.prosody.output()}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
