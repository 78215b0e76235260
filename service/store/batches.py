"""Long lists cut into batches, so that no statement's IN (...) list grows without bound
(an import or a day's view may name thousands of rows)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

# Values per IN list or multi-row INSERT: far below SQLite's and PostgreSQL's limits.
BATCH = 500


def chunks(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    """`items` in order, `size` at a time (the last batch may be shorter)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
