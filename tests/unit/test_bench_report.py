"""bench/report.py judges the growth and fleet targets from what those scenarios measured."""

from __future__ import annotations

from bench.growth import HistoryPoint, SnapshotPoint
from bench.report import Verdicts, render
from bench.results import EndpointLatency, FleetPoint, Results


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


def fleet(database: str, api_p99_ms: float, lag_p99_ms: float, errors: int = 0) -> FleetPoint:
    def latency(name: str, sent: int, p99_ms: float, failed: int = 0) -> EndpointLatency:
        return EndpointLatency(name, sent, p99_ms / 3, p99_ms, p99_ms * 2, failed)

    endpoints = (
        latency("initiate", 1_800, 10.0),
        latency("token", 1_800, api_p99_ms),  # the worst endpoint is the one judged
        latency("details", 1_800, 12.0),
        latency("events", 11_988, 20.0, errors),
        latency("snapshots", 12, 3_000.0),
    )
    return FleetPoint(database, 2_000, 4, 180.0, endpoints, 8.0, lag_p99_ms, lag_p99_ms * 3, 0)


def test_a_fleet_run_meets_its_targets_under_them_and_misses_over() -> None:
    results = Results(10.0, 5.0, 32)
    results.fleet = [
        fleet("sqlite", 49.9, 999.0),
        fleet("postgresql", 50.0, 1_000.0, errors=2),  # at the limit is over it
    ]
    api = "fleet: API p99 < 50 ms (each of initiate, token, details)"
    lag = "fleet: record lag p99 < 1 s (occurred_at to its 204)"
    assert verdicts(results) == {
        (api, "sqlite, 1 worker"): True,
        (lag, "sqlite, 1 worker"): True,
        ("fleet: zero errors", "sqlite, 1 worker"): True,
        (api, "postgresql, 1 worker"): False,
        (lag, "postgresql, 1 worker"): False,
        ("fleet: zero errors", "postgresql, 1 worker"): False,
    }
    page = render(results)
    assert "12,000 events sent (66.7/s), 12 of them snapshots" in page
    assert "| token | 1,800 | 16.6 | 49.9 | 99.8 | 0 |" in page
    assert "| record lag | 11,998 | 8.0 | 1000.0 | 3000.0 |  |" in page
    assert "postgresql, 1 worker: initiate 10.0 ms, token 50.0 ms, details 12.0 ms" in page
    assert "postgresql, 1 worker: 2 events" in page


def test_a_fleet_run_without_answers_is_no_pass() -> None:
    results = Results(10.0, 5.0, 32)
    empty = FleetPoint("sqlite", 2_000, 4, 180.0, (), 0.0, 0.0, 0.0, 5)
    results.fleet = [empty]
    found = verdicts(results)
    assert len(found) == 3  # API p99, record lag, errors (the 5 unsent)
    assert not any(found.values())
