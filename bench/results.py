"""What one `python -m bench` run measured, as plain values for the report."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.growth import HistoryPoint, SnapshotPoint
from bench.load import LogCounts, WrkResult
from bench.pyspy import Profile


@dataclass(frozen=True)
class Measurement:
    database: str  # "sqlite" or "postgresql"
    workers: int
    scenario: str  # "initiate", "token", "events", "list 1M", "list 10k"
    loaded: WrkResult  # 32 connections
    serial: WrkResult | None  # 1 connection: the time of one request without queueing
    log: LogCounts | None
    baseline_rps: float

    @property
    def ratio(self) -> float:
        return self.loaded.rps / self.baseline_rps if self.baseline_rps else 0.0

    @property
    def non_2xx(self) -> int:
        if self.log is not None:
            return sum(self.log.non_2xx.values())
        return self.loaded.status_errors

    @property
    def errors(self) -> int:
        return self.non_2xx + self.loaded.socket_errors


@dataclass(frozen=True)
class ServerStat:
    database: str
    workers: int
    role: str  # "baseline", "service (ops)", "service (1M calls)", ...
    ready_s: float
    peak_rss_mb: list[float]


@dataclass(frozen=True)
class Plan:
    database: str
    dataset: str
    page: str
    sql: str
    plan: str
    uses_index: bool
    sorts: bool


@dataclass
class Results:
    seconds: float
    serial_seconds: float
    connections: int
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    baselines: list[tuple[str, int, WrkResult]] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    servers: list[ServerStat] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    queries: dict[str, list[str]] = field(default_factory=dict)  # "sqlite initiate" -> SQL
    profiles: dict[str, Profile] = field(default_factory=dict)  # "sqlite initiate" -> profile
    datasets: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    history: list[HistoryPoint] = field(default_factory=list)
    snapshots: list[SnapshotPoint] = field(default_factory=list)
    locked_sqlite: int = 0
    wall_s: float = 0.0
