"""`python -m bench`: every scenario against the baseline, then docs/benchmarks.md.

For each database (SQLite, PostgreSQL) and worker count (1, 2) one block runs, in order: the
baseline; initiate, token and events on a fresh database; the list of a doctor's calls in
1,000,000 calls; the same list in 10,000 calls. Each measurement is a short warm-up then a
bounded wrk run at 32 connections and a shorter one at 1 connection. Ratios compare with the
baseline measured in the same block, minutes apart, because this machine is shared and noisy.
Then, per database with one worker, the growth scenarios (bench/growth.py) and the fleet run
(bench/fleet.py).
"""

from __future__ import annotations

import argparse
import base64
import importlib.metadata
import logging
import os
import platform
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import jwt

from bench import data, fleet, growth, load, profiles, report, servers
from bench.load import Request
from bench.results import Measurement, Plan, Results, ServerStat

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / ".results"
OUTPUT = REPO / "docs" / "benchmarks.md"
CONNECTIONS = 32
WARMUP_S = 2
EVENTS_PER_RUN = 60_000
PAGE = 50
LIST_INDEX = "video_calls_doctor_uid_created_at_id"

log = logging.getLogger("bench")


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- environment --------------------------------------------------------------------------


class Context:
    def __init__(self, args: argparse.Namespace) -> None:
        self.seconds: float = args.seconds
        self.serial_seconds: float = max(2.0, args.seconds / 2)
        self.profile: bool = args.profile
        self.secrets = {
            "DEV_AUTH_SECRET": secrets.token_hex(32),
            "JITSI_APP_SECRET": secrets.token_hex(32),
            "PROSODY_EVENTS_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        }
        RESULTS_DIR.mkdir(exist_ok=True)
        self.results = Results(self.seconds, self.serial_seconds, CONNECTIONS)
        self.log_dir = RESULTS_DIR / time.strftime("%Y%m%d-%H%M%S")
        self.log_dir.mkdir()
        self.tokens: dict[str, str] = {}

    def env(self, url: str) -> dict[str, str]:
        return {
            **self.secrets,
            "APP_ENV": "test",
            "AUTH_MODE": "dev",
            "JITSI_APP_ID": "clinic-app",
            "JITSI_DOMAIN": "meet.example.test",
            "DATABASE_URL": url,
            # The sweeper is a periodic job, not per-request work; off so runs are comparable.
            "SWEEP_INTERVAL": "0",
            "LOG_LEVEL": "INFO",
        }

    def token(self, uid: str) -> str:
        """A dev ID token for `uid`, as the service verifies it (HS256, DEV_AUTH_SECRET)."""
        if uid not in self.tokens:
            now = int(time.time())
            claims = {"sub": uid, "iat": now, "exp": now + 86400,
                      "iss": "videocalls-dev", "aud": "videocalls-dev"}  # fmt: skip
            self.tokens[uid] = jwt.encode(claims, self.secrets["DEV_AUTH_SECRET"], "HS256")
        return self.tokens[uid]

    def file(self, name: str, requests: Iterator[Request] | list[Request]) -> Path:
        path = self.log_dir / f"{name}.tsv"
        load.write_requests(path, requests)
        return path


# --- request files ------------------------------------------------------------------------


def _auth(ctx: Context, uid: str) -> tuple[str, str]:
    return ("Authorization", f"Bearer {ctx.token(uid)}")


def _ops_people() -> list[tuple[str, str, str]]:
    return [
        (f"ops_{i:05d}", f"doc_{i % data.OPS_DOCTORS:04d}", f"pat_{i:06d}")
        for i in range(data.OPS_APPOINTMENTS)
    ]


def initiate_requests(ctx: Context) -> list[Request]:
    out: list[Request] = []
    for apt, doctor, patient in _ops_people():
        for uid in (doctor, patient):
            body = load.compact({"appointmentId": apt})
            out.append(("POST", "/api/video-calls/initiate", body,
                        (_auth(ctx, uid), ("Content-Type", "application/json"))))  # fmt: skip
    return out


def baseline_requests(ctx: Context) -> list[Request]:
    return [
        ("POST", "/baseline/initiate", body, headers)
        for _, _, body, headers in initiate_requests(ctx)
    ]


def token_requests(ctx: Context) -> list[Request]:
    out: list[Request] = []
    for apt, doctor, patient in _ops_people():
        for uid in (doctor, patient):
            out.append(("GET", f"/api/video-calls/token/{apt}", "", (_auth(ctx, uid),)))
    return out


def event_requests(ctx: Context, count: int) -> list[Request]:
    rooms = [f"appointment_{apt} {doctor} {patient}" for apt, doctor, patient in _ops_people()]
    events = load.consultation_events(rooms, count, int(time.time() * 1000))
    return list(load.signed_requests(ctx.secrets["PROSODY_EVENTS_SECRET"], events))


def list_requests(ctx: Context, cursors: list[str | None]) -> list[Request]:
    out: list[Request] = []
    for cursor in cursors:
        query = f"?limit={PAGE}" + (f"&cursor={cursor}" if cursor else "")
        out.append(("GET", f"/api/video-calls{query}", "", (_auth(ctx, data.BENCH_DOCTOR),)))
    return out


# --- in-process checks: queries per request, EXPLAIN ----------------------------------------


@contextmanager
def captured_sql() -> Iterator[list[str]]:
    """Every statement peewee sends, as (sql, params) text, while the block runs."""
    found: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            msg = record.msg
            if isinstance(msg, tuple) and msg:
                found.append(str(msg[0]))

    logger = logging.getLogger("peewee")
    handler, level = Grab(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield found
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _bind(url: str) -> Any:
    from service.store import db

    database = db.make_database(url, 2)
    db.bind(database)
    return database


def count_queries(ctx: Context, kind: str, ops_url: str, small_url: str) -> None:
    from service import calls, tracking
    from service.config import load_settings
    from service.receiver.parse import parse_v1

    settings = load_settings(ctx.env(ops_url))
    database = _bind(ops_url)
    apt, doctor, _ = _ops_people()[-1]
    event = event_requests(ctx, 1)[0]
    cases: list[tuple[str, Callable[[], object]]] = [
        ("initiate", lambda: calls.initiate(settings, doctor, apt)),
        ("token", lambda: calls.refresh_token(settings, doctor, apt)),
        ("events", lambda: tracking.ingest(settings, parse_v1(event[2].encode()), "v1")),
    ]
    for name, work in cases:
        with captured_sql() as sql:
            work()
        ctx.results.queries[f"{kind} {name}"] = list(sql)
    database.close_all()
    database = _bind(small_url)
    with captured_sql() as sql:
        calls.list_for_user(data.BENCH_DOCTOR, None, None, PAGE)
    ctx.results.queries[f"{kind} list"] = list(sql)
    database.close_all()


def doctor_cursors(url: str) -> list[str | None]:
    """The `cursor` of every page of the bench doctor's calls, as the service encodes it."""
    from service.api.common import encode_cursor
    from service.store.call_lists import Cursor

    database = _bind(url)
    with database.connection_context():
        rows = database.execute_sql(
            "SELECT created_at, id FROM video_calls WHERE doctor_uid = "  # noqa: S608
            + ("%s" if "postgresql" in url else "?")
            + " ORDER BY created_at DESC, id DESC",
            (data.BENCH_DOCTOR,),
        ).fetchall()
    database.close_all()
    cursors: list[str | None] = [None]
    for end in range(PAGE - 1, len(rows) - 1, PAGE):
        cursors.append(encode_cursor(Cursor(int(rows[end][0]), str(rows[end][1]))))
    return cursors


def explain(ctx: Context, kind: str, dataset: str, url: str, cursors: list[str | None]) -> None:
    from service import calls
    from service.api.common import page_cursor

    class Fake:  # page_cursor reads only query_params
        def __init__(self, cursor: str | None) -> None:
            self.query_params = {"cursor": cursor} if cursor else {}

    database = _bind(url)
    for label, cursor_text in (
        ("first page", cursors[0]),
        ("page 100", cursors[min(99, len(cursors) - 1)]),
    ):
        cursor = page_cursor(Fake(cursor_text))  # type: ignore[arg-type]
        with captured_sql() as sql:
            calls.list_for_user(data.BENCH_DOCTOR, None, cursor, PAGE)
        # The list query itself (the use case may look up the caller first).
        first = next(q for q in sql if 'FROM "video_calls"' in q)
        params = _params_of(first, cursor)
        with database.connection_context():
            if kind == "sqlite":
                rows = database.execute_sql("EXPLAIN QUERY PLAN " + first, params).fetchall()
                plan = "\n".join(str(r[-1]) for r in rows)
                sorts = "TEMP B-TREE" in plan
            else:
                rows = database.execute_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + first, params
                ).fetchall()
                plan = "\n".join(str(r[0]) for r in rows)
                sorts = any(
                    line.strip().startswith(("Sort", "->  Sort")) for line in plan.splitlines()
                )
        ctx.results.plans.append(Plan(kind, dataset, label, first, plan, LIST_INDEX in plan, sorts))
    database.close_all()


def _params_of(sql: str, cursor: Any) -> tuple[Any, ...]:
    """The parameters of the doctor branch of list_calls_for_user (peewee's order)."""
    params: list[Any] = [data.BENCH_DOCTOR]
    if cursor is not None:
        params += [cursor.created_at, cursor.id]
    params.append(PAGE + 1)
    assert sql.count("?") + sql.count("%s") == len(params), sql
    return tuple(params)


# --- measuring ----------------------------------------------------------------------------


def measure(
    ctx: Context,
    server: servers.Server,
    kind: str,
    scenario: str,
    route: str,
    loaded_file: Path,
    serial_file: Path | None,
    baseline_rps: float,
) -> Measurement:
    mark = load.log_mark(server.log_path)
    loaded = load.wrk(server.url, loaded_file, ctx.seconds, CONNECTIONS)
    serial = None
    if serial_file is not None:
        serial = load.wrk(server.url, serial_file, ctx.serial_seconds, 1)
    counts = (
        load.log_counts(server.log_path, mark, route) if server.name.startswith("svc") else None
    )
    m = Measurement(kind, server.workers, scenario, loaded, serial, counts, baseline_rps)
    ctx.results.measurements.append(m)
    if kind == "sqlite" and counts is not None:
        ctx.results.locked_sqlite += counts.locked
    say(
        f"{kind} w{server.workers} {scenario}: {loaded.rps:,.0f} req/s "
        f"(x{m.ratio:.2f} of baseline), p50 {loaded.p50_ms:.1f} ms, p99 {loaded.p99_ms:.1f} ms, "
        f"errors {m.errors}" + (f"; 1 conn p50 {serial.p50_ms:.2f} ms" if serial else "")
    )
    return m


def profiled(ctx: Context, server: servers.Server, key: str, requests: Path) -> None:
    if not ctx.profile:
        return
    assert server.workers == 1, "profiles are of one worker (bench/sampler.py)"
    control, output = _sampler_files(ctx, server.name)
    output.unlink(missing_ok=True)
    control.touch()
    try:
        load.wrk(server.url, requests, profiles.PROFILE_S, CONNECTIONS)
    finally:
        control.unlink()
    for _ in range(200):  # the sampler writes its stacks once it sees the file gone
        if output.exists():
            break
        time.sleep(0.05)
    raw = ctx.log_dir / f"profile-{key.replace(' ', '-')}.txt"
    if output.exists():
        output.replace(raw)
    summary = profiles.summarize(raw)
    if summary is not None:
        ctx.results.profiles[key] = summary


def _sampler_files(ctx: Context, server_name: str) -> tuple[Path, Path]:
    """The file that turns a server's sampler on while it exists, and the one it writes."""
    return ctx.log_dir / f"{server_name}.sampling", ctx.log_dir / f"{server_name}.stacks"


def record_server(ctx: Context, server: servers.Server, kind: str, role: str) -> None:
    ctx.results.servers.append(
        ServerStat(kind, server.workers, role, server.ready_s, servers.worker_peaks(server))
    )


def service(ctx: Context, name: str, url: str, workers: int) -> servers.Server:
    """The service, started through bench/sampler.py where it may be profiled (one worker,
    profiles on): its sampler is idle until `profiled` turns it on."""
    args = ["-m", "service", "serve"]
    if ctx.profile and workers == 1:
        control, output = _sampler_files(ctx, f"svc-{name}")
        args = ["-m", "bench.sampler", str(control), str(output), "serve"]
    return servers.start(f"svc-{name}", args, ctx.env(url), ctx.log_dir, workers)


def block(ctx: Context, kind: str, workers: int, history: dict[str, data.Dataset]) -> None:
    say(f"block: {kind}, {workers} worker(s)")
    # Baseline.
    base = servers.start(
        f"baseline-{kind}-w{workers}", ["-m", "bench.baseline_app"],
        {"JITSI_APP_SECRET": ctx.secrets["JITSI_APP_SECRET"]}, ctx.log_dir, workers,
    )  # fmt: skip
    base_file = ctx.file("baseline", baseline_requests(ctx))
    load.wrk(base.url, base_file, WARMUP_S, CONNECTIONS)
    b = measure(ctx, base, kind, "baseline", "/baseline", base_file, base_file, 0.0)
    ctx.results.baselines.append((kind, workers, b.loaded))
    ctx.results.measurements.remove(b)
    record_server(ctx, base, kind, "baseline")
    servers.stop(base)
    brps = b.loaded.rps

    # Writes: initiate, token, events on a fresh database.
    ops = data.ops_dataset(kind)
    if workers == 1:
        count_queries(ctx, kind, ops.url, history["small"].url)
    initiate_file = ctx.file("initiate", initiate_requests(ctx))
    token_file = ctx.file("token", token_requests(ctx))
    srv = service(ctx, f"ops-{kind}-w{workers}", ops.url, workers)
    try:
        load.wrk(srv.url, token_file, WARMUP_S, CONNECTIONS)
        measure(
            ctx,
            srv,
            kind,
            "initiate",
            "/api/video-calls/initiate",
            initiate_file,
            initiate_file,
            brps,
        )
        measure(ctx, srv, kind, "token", "/api/video-calls/token", token_file, token_file, brps)
        events = ctx.file("events", event_requests(ctx, EVENTS_PER_RUN))
        serial_events = ctx.file("events-serial", event_requests(ctx, EVENTS_PER_RUN // 4))
        measure(ctx, srv, kind, "events", "/api/prosody/events", events, serial_events, brps)
        if workers == 1:
            profiled(ctx, srv, f"{kind} initiate", initiate_file)
            profiled(ctx, srv, f"{kind} token", token_file)
            profiled(
                ctx,
                srv,
                f"{kind} events",
                ctx.file("events-profile", event_requests(ctx, EVENTS_PER_RUN // 2)),
            )
        record_server(ctx, srv, kind, "service (initiate, token, events)")
    finally:
        servers.stop(srv)
    data.drop_ops(kind)

    # Reads: one doctor's list at 1,000,000 and at 10,000 calls.
    cursors = doctor_cursors(history["small"].url)
    list_file = ctx.file("list", list_requests(ctx, cursors))
    for name, label in (("big", "list 1M"), ("small", "list 10k")):
        srv = service(ctx, f"{name}-{kind}-w{workers}", history[name].url, workers)
        try:
            load.wrk(srv.url, list_file, WARMUP_S, CONNECTIONS)
            measure(ctx, srv, kind, label, "/api/video-calls", list_file, list_file, brps)
            if workers == 1 and name == "big":
                profiled(ctx, srv, f"{kind} list 1M", list_file)
            record_server(ctx, srv, kind, f"service ({label.removeprefix('list ')} calls)")
        finally:
            servers.stop(srv)
    if workers == 1:
        for name in ("big", "small"):
            explain(ctx, kind, name, history[name].url, cursors)


def run_growth(ctx: Context, kind: str) -> None:
    say(f"growth: {kind}, 1 worker")
    found, shots = growth.run(
        kind,
        ctx.env,
        lambda name, url: service(ctx, f"{name}-{kind}", url, 1),
        ctx.token,
    )
    ctx.results.history += found
    ctx.results.snapshots += shots
    for h in found:
        say(f"{kind} history {h.history:,}: next event mean {h.mean_ms:.1f} ms, "
            f"p99 {h.p99_ms:.1f} ms, errors {h.errors}")  # fmt: skip
    for s in shots:
        say(f"{kind} snapshot {s.rooms:,} rooms: applied in {s.apply_ms:,.0f} ms, token "
            f"worst {s.during_max_ms:.1f} ms (idle p50 {s.idle_p50_ms:.1f}), "
            f"errors {s.errors}")  # fmt: skip


def run_fleet(ctx: Context, kind: str, seconds: float) -> None:
    say(f"fleet: {kind}, 1 worker, {fleet.CONSULTATIONS:,} consultations on "
        f"{fleet.HOSTS} hosts for {seconds:.0f} s")  # fmt: skip
    point = fleet.run(
        kind,
        ctx.env,
        lambda name, url: service(ctx, f"{name}-{kind}", url, 1),
        ctx.token,
        seconds,
    )
    ctx.results.fleet.append(point)
    api = ", ".join(f"{e.endpoint} p99 {e.p99_ms:.1f} ms" for e in point.api)
    say(f"{kind} fleet: {point.events:,} events ({point.events_per_s:.1f}/s, "
        f"{point.snapshots} snapshots), record lag p99 {point.lag_p99_ms:,.0f} ms; {api}; "
        f"errors {point.errors}")  # fmt: skip


# --- the run ------------------------------------------------------------------------------


def machine_and_versions(ctx: Context, kinds: list[str]) -> None:

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem = next(
        line
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    ctx.results.machine = {
        "cores": str(os.cpu_count()),
        "CPU": model,
        "memory": f"{int(mem.split()[1]) // 1024:,} MiB",
        "kernel": platform.release(),
    }
    wrk_version = subprocess.run(
        [load.require_wrk(), "--version"], capture_output=True, text=True, check=False
    )
    versions = {
        "python": platform.python_version(),
        "uvicorn": importlib.metadata.version("uvicorn"),
        "starlette": importlib.metadata.version("starlette"),
        "peewee": importlib.metadata.version("peewee"),
        "PyJWT": importlib.metadata.version("PyJWT"),
        "sqlite": sqlite3.sqlite_version,
        "wrk": (wrk_version.stdout + wrk_version.stderr).split("[")[0].strip(),
    }
    for module in ("uvloop", "httptools", "psycopg2"):
        try:
            versions[module] = str(__import__(module).__version__).split(" ")[0]
        except ImportError:
            versions[module] = "not installed"
    if "postgresql" in kinds:
        database = _bind(data.postgres_base())
        with database.connection_context():
            versions["postgresql"] = database.execute_sql("SHOW server_version").fetchone()[0]
        database.close_all()
    ctx.results.versions = versions


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each 32-connection run")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument(
        "--scenarios",
        default="throughput,growth,fleet",
        help="throughput (the blocks against the baseline), growth (history and snapshots), "
        "fleet (2,000 live consultations on 4 Prosody hosts with frontend traffic)",
    )
    parser.add_argument(
        "--fleet-seconds",
        type=float,
        default=fleet.DURATION_S,
        help="how long the fleet run sends events and frontend requests",
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    return parser.parse_args(argv)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        load.require_wrk()
    except load.WrkMissing as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    began = time.monotonic()
    ctx = Context(args)
    kinds = [k for k in args.databases.split(",") if k]
    if "postgresql" in kinds:
        reason = data.postgres_available()
        if reason:
            ctx.results.skipped.append(f"PostgreSQL ({data.postgres_base()}): {reason}")
            kinds.remove("postgresql")
    if not ctx.profile:
        ctx.results.skipped.append("profiles: --no-profile")
    try:
        machine_and_versions(ctx, kinds)
        for kind in kinds:
            history = {}
            for name in ("big", "small") if "throughput" in args.scenarios else ():
                say(f"dataset {kind} {name}")
                history[name] = data.history_dataset(kind, name)
                ds = history[name]
                how = f"generated in {ds.generated_s:.0f} s" if ds.generated_s else "cached"
                ctx.results.datasets.append(f"{kind} `{name}`: {ds.calls:,} calls ({how})")
            scenarios = args.scenarios.split(",")
            if "throughput" in scenarios:
                for workers in (int(w) for w in args.workers.split(",")):
                    block(ctx, kind, workers, history)
            if "growth" in scenarios:
                run_growth(ctx, kind)
            if "fleet" in scenarios:
                run_fleet(ctx, kind, args.fleet_seconds)
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped, nothing written", file=sys.stderr)
        return 130
    finally:
        servers.stop_all()
        for kind in kinds:
            data.drop_ops(kind)
    ctx.results.wall_s = time.monotonic() - began
    args.output.write_text(report.render(ctx.results), encoding="utf-8")
    say(f"wrote {args.output} ({ctx.results.wall_s / 60:.1f} min); logs in {ctx.log_dir}")
    return 0
