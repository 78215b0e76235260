"""Fixtures of the use-case tests: webhooks off unless asked for, and seeded records."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.webhooks import outbox
from tests.clock import FrozenClock
from tests.usecases.support import appointment, user


@pytest.fixture(autouse=True)
def webhooks_off() -> Iterator[None]:
    outbox.configure(False)
    yield
    outbox.configure(False)


@pytest.fixture
def webhooks() -> None:
    """The outbox writes messages (as with WEBHOOK_URL set)."""
    outbox.configure(True)


@pytest.fixture
def seeded(database_url: str, clock: FrozenClock) -> str:
    """Users doc, pat and outsider, and appointment appt1 (CONFIRMED, under way)."""
    for uid in ("doc", "pat", "outsider"):
        user(uid)
    appointment(clock, "appt1")
    return database_url
