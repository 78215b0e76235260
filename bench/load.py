"""Load: request files for bench/lua/replay.lua, wrk runs, and what the server logged.

A request file has one request per line: METHOD, PATH, BODY, then header/value pairs, all
tab-separated (no field contains a tab or a newline: bodies are compact JSON).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.receiver.signing import sign

LUA = Path(__file__).resolve().parent / "lua" / "replay.lua"
WRK_THREADS = 1  # two cores: one wrk thread (far from its limit here) leaves the rest to servers
WRK_TIMEOUT = "5s"
HOST = "muc.meet.example.test"

Request = tuple[str, str, str, Sequence[tuple[str, str]]]


class WrkMissing(RuntimeError):
    pass


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing(
            "wrk is not installed: run `sudo scripts/install-bench-tools` "
            "(or `apt-get install -y wrk`), then `make bench` again"
        )
    return path


def write_requests(path: Path, requests: Iterable[Request]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for method, target, body, headers in requests:
            fields = [method, target, body]
            for name, value in headers:
                fields += [name, value]
            if any("\t" in f or "\n" in f for f in fields):
                raise ValueError(f"request field with a tab or newline: {target}")
            fh.write("\t".join(fields) + "\n")
            count += 1
    return count


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def consultation_events(rooms: Sequence[str], total: int, at_ms: int) -> list[dict[str, Any]]:
    """`total` distinct version-1 events, round robin over `rooms`.

    Each room sees sessions of its doctor and patient joining and leaving in turn (joined,
    joined, left, left), as a consultation with reconnects does; times are in the past minute.
    """
    boot = f"b_{uuid.uuid4().hex[:12]}"
    meetings = {room: uuid.uuid4().hex for room in rooms}
    events = []
    for n in range(total):
        room_name, doctor, patient = rooms[n % len(rooms)].split(" ")
        step = n // len(rooms)
        session_no, phase = divmod(step, 4)
        who = (doctor, patient, patient, doctor)[phase]
        kind = "occupant.joined" if phase < 2 else "occupant.left"
        event: dict[str, Any] = {
            "version": 1,
            "id": f"evt_{uuid.uuid4()}",
            "type": kind,
            "occurred_at": at_ms - 60_000 + step * 10,
            "source": {"host": HOST, "boot_id": boot, "seq": n + 1},
            "room": {
                "name": room_name,
                "jid": f"{room_name}@{HOST}",
                "meeting_id": meetings[rooms[n % len(rooms)]],
            },
            "occupant": {"session": f"s{session_no}_{who}", "user_id": who},
        }
        if kind == "occupant.left":
            event["reason"] = "left"
        events.append(event)
    return events


def signed_requests(secret: str, events: Iterable[dict[str, Any]]) -> Iterable[Request]:
    ts = int(time.time())
    for event in events:
        body = compact(event)
        yield (
            "POST",
            "/api/prosody/events",
            body,
            (
                ("Content-Type", "application/json"),
                ("webhook-id", event["id"]),
                ("webhook-timestamp", str(ts)),
                ("webhook-signature", sign(secret, event["id"], ts, body.encode())),
            ),
        )


@dataclass(frozen=True)
class WrkResult:
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    status_errors: int  # responses >= 400, as wrk counts them
    socket_errors: int  # connect, read, write, timeout
    laps: int  # > 0: a thread went through its whole slice of requests and started again


def wrk(url: str, requests: Path, seconds: float, connections: int) -> WrkResult:
    cmd = [
        require_wrk(),
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        "-s",
        str(LUA),
        url,
        "--",
        str(requests),
        str(WRK_THREADS),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = re.search(r"^BENCH_JSON (.*)$", out.stdout, re.MULTILINE)
    if out.returncode != 0 or match is None:
        raise RuntimeError(
            f"wrk failed ({out.returncode}): {out.stderr[-2000:]}{out.stdout[-2000:]}"
        )
    data = json.loads(match.group(1))
    duration = data["duration_us"] / 1e6
    return WrkResult(
        connections=connections,
        seconds=duration,
        requests=data["requests"],
        rps=data["requests"] / duration if duration else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        status_errors=data["status"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        laps=data["laps"],
    )


@dataclass(frozen=True)
class LogCounts:
    requests: int
    non_2xx: dict[int, int]
    locked: int  # lines mentioning "database is locked"
    errors: int  # error-level lines


def log_mark(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def log_counts(path: Path, start: int, route: str) -> LogCounts:
    """What the service logged for `route` (a path prefix) since byte offset `start`."""
    with path.open("rb") as fh:
        fh.seek(start)
        text = fh.read().decode(errors="replace")
    requests, locked, errors = 0, 0, 0
    non_2xx: dict[int, int] = {}
    for line in text.splitlines():
        if "database is locked" in line:
            locked += 1
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        if entry.get("level") == "error":
            errors += 1
        if entry.get("msg") == "request" and str(entry.get("path", "")).startswith(route):
            requests += 1
            status = int(entry.get("status", 0))
            if not 200 <= status < 300:
                non_2xx[status] = non_2xx.get(status, 0) + 1
    return LogCounts(requests, non_2xx, locked, errors)
