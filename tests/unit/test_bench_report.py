"""bench/report.py judges the growth targets from what the growth scenarios measured."""

from __future__ import annotations

from bench.growth import HistoryPoint, SnapshotPoint
from bench.report import Verdicts, render
from bench.results import Results


def history(database: str, held: int, mean_ms: float, errors: int = 0) -> HistoryPoint:
    return HistoryPoint(database, held, 200, mean_ms, mean_ms, mean_ms * 2, mean_ms * 3, errors)


def snapshot(database: str, rooms: int, worst_ms: float, idle_ms: float = 2.0) -> SnapshotPoint:
    return SnapshotPoint(
        database, rooms, 1_000.0, idle_ms, idle_ms * 2, 50, 5.0, worst_ms, 300.0, 0
    )


def verdicts(results: Results) -> dict[tuple[str, str], bool]:
    return {(target, cell): ok for target, cell, _, ok, _ in Verdicts(results).rows}


def test_a_room_history_passes_within_its_growth_and_misses_beyond() -> None:
    results = Results(10.0, 5.0, 32)
    results.history = [
        history("sqlite", 10, 6.0),
        history("sqlite", 1_000, 7.0),
        history("sqlite", 5_000, 9.0),  # exactly 1.5x
        history("postgresql", 10, 6.0),
        history("postgresql", 5_000, 9.1),
    ]
    found = verdicts(results)
    target = "events: a room's 5,000th event <= 1.5x its 10th (mean, 1 connection)"
    assert found[(target, "sqlite, 1 worker")] is True
    assert found[(target, "postgresql, 1 worker")] is False


def test_only_the_biggest_snapshot_is_judged_by_its_delay_over_idle() -> None:
    results = Results(10.0, 5.0, 32)
    results.snapshots = [
        snapshot("sqlite", 100, 500.0),  # not judged: the target is about the biggest
        snapshot("sqlite", 5_000, 52.0),  # 50 ms over an idle 2 ms: a pass
        snapshot("postgresql", 5_000, 56.0, idle_ms=4.0),  # 52 ms: a miss
    ]
    found = verdicts(results)
    target = "snapshot of 5,000 rooms delays a token request by <= 50 ms"
    assert found == {
        (target, "sqlite, 1 worker"): True,
        ("snapshots: zero errors", "sqlite, 1 worker"): True,
        (target, "postgresql, 1 worker"): False,
        ("snapshots: zero errors", "postgresql, 1 worker"): True,
    }
    page = render(results)
    assert "| sqlite | 5,000 | 1,000 |" in page
    assert "postgresql, 1 worker: 52.0 ms" in page
