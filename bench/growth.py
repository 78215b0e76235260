"""Growth scenarios: what a room's next event costs as its history grows, and what a snapshot
of many live rooms does to token requests sent while it is applied.

Both run against a real `videocalls serve` (one worker) over HTTP. The histories and the live
rooms are stored beforehand in-process, through the service's own store and derivation, so
that preparing 5,000 events does not take the quadratic time the scenario measures.
"""

from __future__ import annotations

import functools
import http.client
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench import data, load, servers
from bench.load import Request

HISTORIES = (10, 1_000, 5_000)
# Events sent one at a time after each history (the next ones of the same consultation).
FOLLOWING = 200
SNAPSHOT_ROOMS = (100, 1_000, 5_000)
# Token requests sent before each snapshot, one at a time: the undisturbed latency.
IDLE_TOKENS = 200
# Appointments 0..2 hold the histories, the rest the snapshot rooms.
HISTORY_APPOINTMENTS = len(HISTORIES)
APPOINTMENTS = HISTORY_APPOINTMENTS + max(SNAPSHOT_ROOMS)
HOST = load.HOST


@dataclass(frozen=True)
class HistoryPoint:
    database: str
    history: int  # events the room held before the measured ones
    sent: int
    mean_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int


@dataclass(frozen=True)
class SnapshotPoint:
    database: str
    rooms: int
    apply_ms: float  # the snapshot's request, from sending to its 204
    idle_p50_ms: float  # token requests before the snapshot
    idle_max_ms: float
    during: int  # token requests answered while the snapshot was applied
    during_p50_ms: float
    during_max_ms: float
    worst_sent_ms: float  # when the worst of them was sent, after the snapshot was
    errors: int

    @property
    def delay_ms(self) -> float:
        """How much longer the worst token request took than an undisturbed one."""
        return max(0.0, self.during_max_ms - self.idle_p50_ms)


class Client:
    """One keep-alive connection; `send` returns (status, milliseconds)."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def send(self, request: Request) -> tuple[int, float]:
        method, path, body, headers = request
        began = time.perf_counter()
        self.conn.request(method, path, body=body.encode() or None, headers=dict(headers))
        response = self.conn.getresponse()
        response.read()
        return response.status, (time.perf_counter() - began) * 1000

    def close(self) -> None:
        self.conn.close()


def _people(index: int) -> tuple[str, str, str]:
    return (f"ops_{index:05d}", f"doc_{index % data.OPS_DOCTORS:04d}", f"pat_{index:06d}")


def _joined(room: str, meeting: str, boot: str, seq: int, who: str, at: int) -> dict[str, Any]:
    return {
        "version": 1,
        "id": f"evt_{uuid.uuid4()}",
        "type": "occupant.joined",
        "occurred_at": at,
        "source": {"host": HOST, "boot_id": boot, "seq": seq},
        "room": {"name": room, "jid": f"{room}@{HOST}", "meeting_id": meeting},
        "occupant": {"session": f"s_{room}_{who}", "user_id": who},
    }


def _store(settings: Any, events: Sequence[dict[str, Any]]) -> None:
    """Store version-1 events as the receiver would, then derive their calls once each."""
    from service import tracking
    from service.receiver.parse import parse_v1
    from service.store import event_log as event_store
    from service.store import uow

    now = int(time.time() * 1000)
    parsed = [parse_v1(load.compact(e).encode()) for e in events]
    for start in range(0, len(parsed), 500):
        with uow.write():
            for event in parsed[start : start + 500]:
                event_store.insert(event, "v1", now)
    with uow.read():
        rooms = sorted({e["room"]["name"] for e in events})
        call_ids = event_store.calls_for_rooms(rooms)
    tracking.apply_in_steps(settings, call_ids, cause="server_event")


def _store_into(events: Sequence[dict[str, Any]], settings: Any) -> None:
    _store(settings, events)


def _prepared(url: str, env: dict[str, str], fill: Callable[[Any], None]) -> None:
    from service.config import load_settings
    from service.store import db

    database = db.make_database(url, 2)
    db.bind(database)
    try:
        fill(load_settings(env))
    finally:
        database.close_all()  # type: ignore[attr-defined]


def _signed(secret: str, event: dict[str, Any]) -> Request:
    return next(iter(load.signed_requests(secret, [event])))


def _ms(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def histories(
    kind: str, url: str, env: dict[str, str], start: Callable[[], servers.Server]
) -> list[HistoryPoint]:
    """For each history length, a room that already holds that many events of a flapping
    consultation (doctor and patient reconnecting in turn), then FOLLOWING more, each timed."""
    now = int(time.time() * 1000)
    streams = {}
    for index, held in enumerate(HISTORIES):
        apt, doctor, patient = _people(index)
        spec = f"appointment_{apt} {doctor} {patient}"
        streams[held] = load.consultation_events([spec], held + FOLLOWING, now)

    def fill(settings: Any) -> None:
        for held, stream in streams.items():
            _store(settings, stream[:held])

    _prepared(url, env, fill)
    points = []
    srv = start()
    try:
        secret = env["PROSODY_EVENTS_SECRET"]
        for held, stream in streams.items():
            client = Client(srv.url)
            timings, errors = [], 0
            for event in stream[held:]:
                status, ms = client.send(_signed(secret, event))
                timings.append(ms)
                errors += status != 204
            client.close()
            points.append(HistoryPoint(
                kind, held, len(timings), statistics.fmean(timings), _ms(timings, 0.5),
                _ms(timings, 0.99), max(timings), errors,
            ))  # fmt: skip
    finally:
        servers.stop(srv)
    return points


def snapshots(
    kind: str,
    url: str,
    env: dict[str, str],
    start: Callable[[], servers.Server],
    token_for: Callable[[str], str],
) -> list[SnapshotPoint]:
    """Snapshots listing 100, 1,000 and 5,000 live rooms (doctor and patient in each, every
    room with its call), each sent while token requests go on over another connection."""
    boot = f"b_{uuid.uuid4().hex[:12]}"
    meetings = {i: uuid.uuid4().hex for i in range(HISTORY_APPOINTMENTS, APPOINTMENTS)}
    seq = 0
    joined_at: dict[int, int] = {}
    last_snapshot = 0

    def joins(indexes: range) -> list[dict[str, Any]]:
        """Joins just now: after the previous snapshot, which did not list these rooms (a
        join before it would be a session that snapshot says was gone)."""
        nonlocal seq
        at = max(int(time.time() * 1000) - 1_000, last_snapshot + 1)
        out = []
        for i in indexes:
            apt, doctor, patient = _people(i)
            joined_at[i] = at
            for who in (doctor, patient):
                seq += 1
                out.append(_joined(f"appointment_{apt}", meetings[i], boot, seq, who, at))
        return out

    def snapshot(count: int) -> dict[str, Any]:
        nonlocal seq, last_snapshot
        seq += 1
        at = last_snapshot = int(time.time() * 1000)
        rooms = []
        for i in range(HISTORY_APPOINTMENTS, HISTORY_APPOINTMENTS + count):
            apt, doctor, patient = _people(i)
            room = f"appointment_{apt}"
            rooms.append({
                "room": {"name": room, "jid": f"{room}@{HOST}", "meeting_id": meetings[i]},
                "occupants": [
                    {"session": f"s_{room}_{who}", "user_id": who, "joined_at": joined_at[i]}
                    for who in (doctor, patient)
                ],
            })  # fmt: skip
        return {
            "version": 1, "id": f"evt_{uuid.uuid4()}", "type": "rooms.snapshot",
            "occurred_at": at, "source": {"host": HOST, "boot_id": boot, "seq": seq},
            "interval_s": 60, "rooms": rooms,
        }  # fmt: skip

    tokens: list[Request] = []
    for i in range(HISTORY_APPOINTMENTS, APPOINTMENTS):
        apt, doctor, _ = _people(i)
        tokens.append(("GET", f"/api/video-calls/token/{apt}", "",
                       (("Authorization", f"Bearer {token_for(doctor)}"),)))  # fmt: skip
    points = []
    live = HISTORY_APPOINTMENTS
    for count in SNAPSHOT_ROOMS:
        # The rooms of every snapshot so far stay live; each snapshot lists all of them.
        new_rooms = joins(range(live, HISTORY_APPOINTMENTS + count))
        live = HISTORY_APPOINTMENTS + count
        _prepared(url, env, functools.partial(_store_into, new_rooms))
        srv = start()
        try:
            points.append(_snapshot_point(kind, srv, env, tokens, snapshot(count), count))
        finally:
            servers.stop(srv)
    return points


def _snapshot_point(
    kind: str,
    srv: servers.Server,
    env: dict[str, str],
    tokens: list[Request],
    event: dict[str, Any],
    count: int,
) -> SnapshotPoint:
    client = Client(srv.url)
    idle, errors = [], 0
    for n in range(IDLE_TOKENS):
        status, ms = client.send(tokens[n % len(tokens)])
        idle.append(ms)
        errors += status != 200
    during: list[float] = []
    done = threading.Event()
    request = _signed(env["PROSODY_EVENTS_SECRET"], event)
    outcome: dict[str, float] = {}

    def post() -> None:
        poster = Client(srv.url)
        try:
            status, ms = poster.send(request)
            outcome.update(status=status, ms=ms)
        finally:
            poster.close()
            done.set()

    thread = threading.Thread(target=post)
    began = time.perf_counter()
    thread.start()
    n = 0
    worst = (0.0, 0.0)  # (latency, when it was sent after the snapshot), ms
    while not done.is_set():
        sent_at = (time.perf_counter() - began) * 1000
        status, ms = client.send(tokens[n % len(tokens)])
        n += 1
        if not done.is_set():  # only requests answered while the snapshot was under way
            during.append(ms)
            worst = max(worst, (ms, sent_at))
        errors += status != 200
    thread.join()
    client.close()
    errors += outcome.get("status") != 204
    return SnapshotPoint(
        kind, count, outcome.get("ms", 0.0), _ms(idle, 0.5), max(idle), len(during),
        _ms(during, 0.5), worst[0], worst[1], errors,
    )  # fmt: skip


def run(
    kind: str,
    env_for: Callable[[str], dict[str, str]],
    start: Callable[[str, str], servers.Server],
    token_for: Callable[[str], str],
) -> tuple[list[HistoryPoint], list[SnapshotPoint]]:
    """Both scenarios on one fresh database of `kind` (data.ops_dataset named "growth")."""
    dataset = data.ops_dataset(kind, "growth", APPOINTMENTS)
    env = env_for(dataset.url)
    try:
        found = histories(kind, dataset.url, env, lambda: start("history", dataset.url))
        shots = snapshots(kind, dataset.url, env, lambda: start("snapshot", dataset.url), token_for)
    finally:
        data.drop_ops(kind, "growth")
    return found, shots
