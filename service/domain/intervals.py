"""Interval arithmetic for presence: union, overlap and whole seconds of time intervals.

An interval is (start, end) in ms, half-open; an open one may end at INF. Empty intervals
(end <= start) count for nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from service.domain.rules import whole_seconds

Interval = tuple[float, float]
INF = math.inf


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """The merged, sorted union; touching intervals merge."""
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def intersect(first: Sequence[Interval], second: Sequence[Interval]) -> list[Interval]:
    """The overlap of two merged, sorted unions (as `union` gives them)."""
    result: list[Interval] = []
    i = j = 0
    while i < len(first) and j < len(second):
        start = max(first[i][0], second[j][0])
        end = min(first[i][1], second[j][1])
        if end > start:
            result.append((start, end))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return result


def seconds(intervals: Iterable[Interval]) -> int:
    """Their total length in whole seconds (rules.whole_seconds)."""
    return whole_seconds(sum(end - start for start, end in intervals))
