"""What one `python -m bench` run measured, as plain values for the report."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.growth import HistoryPoint, SnapshotPoint
from bench.load import LogCounts, WrkResult
from bench.profiles import Profile


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


@dataclass(frozen=True)
class EndpointLatency:
    endpoint: str  # "initiate", "token", "details", "events" (room events), "snapshots"
    sent: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # non-2xx answers and failed connections


# The frontend calls among the fleet run's endpoints; the rest are Prosody's.
FLEET_API = ("initiate", "token", "details")


@dataclass(frozen=True)
class FleetPoint:
    database: str
    consultations: int
    hosts: int
    seconds: float  # how long events and frontend requests were scheduled for
    endpoints: tuple[EndpointLatency, ...]
    lag_p50_ms: float  # occurred_at to the event's 204 (its record committed)
    lag_p99_ms: float
    lag_max_ms: float
    unsent: int  # planned events still unsent when the drain ran out

    def endpoint(self, name: str) -> EndpointLatency | None:
        return next((e for e in self.endpoints if e.endpoint == name), None)

    @property
    def api(self) -> list[EndpointLatency]:
        return [e for e in self.endpoints if e.endpoint in FLEET_API]

    @property
    def api_p99_ms(self) -> float:
        """The worst frontend endpoint's p99: the target holds for each of them."""
        return max((e.p99_ms for e in self.api), default=0.0)

    @property
    def events(self) -> int:
        """Every event sent, room events and snapshots."""
        return sum(e.sent for e in self.endpoints if e.endpoint not in FLEET_API)

    @property
    def snapshots(self) -> int:
        found = self.endpoint("snapshots")
        return found.sent if found else 0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return sum(e.errors for e in self.endpoints) + self.unsent


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
    fleet: list[FleetPoint] = field(default_factory=list)
    locked_sqlite: int = 0
    wall_s: float = 0.0
