"""Fixtures of the store tests: a connection held for the whole test, as a use case holds one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.store import db


@pytest.fixture
def conn(database_url: str) -> Iterator[str]:
    """The bound database, with a connection open (store functions expect the caller's)."""
    with db.current().connection_context():
        yield database_url
