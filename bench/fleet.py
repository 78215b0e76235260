"""Fleet scenario: a busy clinic's steady state, not one extreme at a time.

2,000 consultations live at once on 4 Prosody hosts (distinct `source.host`, each with its own
boot), every participant reconnecting now and then, each host sending a snapshot of its rooms
every minute, while frontends call initiate, token and details. Measured: each endpoint's
latency, and the lag from an event's `occurred_at` to its record (the 204 comes only once the
event and its call are committed).

Against a real `videocalls serve` (one worker) over HTTP, like bench/growth.py. The 2,000 live
rooms (doctor and patient joined in each) are stored beforehand in-process through the
service's own store, so the run starts from them instead of 4,000 joins in its first second.
"""

from __future__ import annotations

import functools
import http.client
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import data, servers
from bench.growth import Client, _ms, _people, _prepared, _signed, _store_into
from bench.load import Request, compact
from bench.results import EndpointLatency, FleetPoint

CONSULTATIONS = 2_000
HOSTS = 4
DURATION_S = 180.0
SNAPSHOT_EVERY_S = 60.0
# A participant's mean time between reconnects (exponential): with 4,000 participants about
# 33 reconnects, so 67 events, a second.
RECONNECT_EVERY_S = 120.0
# A reconnect is the old session's `left`, then the new session's `joined` this much later.
REJOIN_S = (1.0, 3.0)
# Requests per second of each frontend call (initiate, token, details).
FRONTEND_RPS = 10.0
# The first events are due this long after the plan is made, so none starts out late.
LEAD_S = 2.0
# After the run, this long for late events; whatever is still unsent then is counted.
DRAIN_S = 30.0
# The pre-stored joins happened this long before the data is stored.
JOINED_BEFORE_MS = 30_000
SEED = 2_000
API = ("initiate", "token", "details")


@dataclass(frozen=True)
class Host:
    name: str
    boot: str


@dataclass
class Fleet:
    """Who is where: consultation i lives on host i % HOSTS with its own meeting."""

    hosts: list[Host]
    meetings: list[str]
    joined_ms: int  # when the pre-stored sessions joined
    seqs: list[int] = field(init=False)  # the last seq used, per host

    def __post_init__(self) -> None:
        self.seqs = [0] * len(self.hosts)

    def host_of(self, index: int) -> int:
        return index % len(self.hosts)

    def next_seq(self, host: int) -> int:
        self.seqs[host] += 1
        return self.seqs[host]


@dataclass
class Tally:
    """What one thread measured; merged once every thread has stopped."""

    latency: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    lag: list[float] = field(default_factory=list)

    def record(self, endpoint: str, ms: float, ok: bool) -> None:
        self.latency.setdefault(endpoint, []).append(ms)
        self.errors[endpoint] = self.errors.get(endpoint, 0) + (not ok)


def _boot() -> str:
    return f"b_{uuid.uuid4().hex[:12]}"


def make_fleet(consultations: int, hosts: int) -> Fleet:
    return Fleet(
        # Distinct `source.host` values, each one Prosody process (its own boot).
        hosts=[Host(f"meet-{h + 1}.fleet.test", _boot()) for h in range(hosts)],
        meetings=[uuid.uuid4().hex for _ in range(consultations)],
        joined_ms=int(time.time() * 1000) - JOINED_BEFORE_MS,
    )


# --- events -------------------------------------------------------------------------------


def _room(fleet: Fleet, index: int) -> dict[str, str]:
    room = f"appointment_{_people(index)[0]}"
    host = fleet.hosts[fleet.host_of(index)].name
    return {"name": room, "jid": f"{room}@{host}", "meeting_id": fleet.meetings[index]}


def _session(index: int, who: str, number: int) -> str:
    # One session per connection of a participant: a reconnect is a new one.
    return f"s_{index:05d}_{who}_{number}"


def _header(fleet: Fleet, host: int, kind: str, at: int) -> dict[str, Any]:
    source = {"host": fleet.hosts[host].name, "boot_id": fleet.hosts[host].boot,
              "seq": fleet.next_seq(host)}  # fmt: skip
    return {"version": 1, "id": f"evt_{uuid.uuid4()}", "type": kind, "occurred_at": at,
            "source": source}  # fmt: skip


def _occupant(
    fleet: Fleet, kind: str, index: int, who: str, number: int, at: int
) -> dict[str, Any]:
    event = _header(fleet, fleet.host_of(index), kind, at)
    event["room"] = _room(fleet, index)
    event["occupant"] = {"session": _session(index, who, number), "user_id": who}
    if kind == "occupant.left":
        event["reason"] = "left"
    return event


def initial_joins(fleet: Fleet) -> list[dict[str, Any]]:
    """Doctor and patient joined in every consultation (session 0 each): stored beforehand."""
    out = []
    for index in range(len(fleet.meetings)):
        _, doctor, patient = _people(index)
        for who in (doctor, patient):
            out.append(_occupant(fleet, "occupant.joined", index, who, 0, fleet.joined_ms))
    return out


# --- the plan: every event of the run, at its time ----------------------------------------

# (occurred_at ms, consultation, participant, event type, session number); a snapshot is
# (ms, -1, "", "rooms.snapshot", 0).
Step = tuple[int, int, str, str, int]


def _reconnects(rng: random.Random, index: int, start_ms: int, seconds: float) -> list[Step]:
    """Each participant's reconnects: exponential gaps (a memoryless flaky network), each a
    left and, 1-3 s later, a join; only whole reconnects that fit in the run."""
    steps: list[Step] = []
    for who in _people(index)[1:]:
        at, number = rng.expovariate(1 / RECONNECT_EVERY_S), 0
        while at + REJOIN_S[1] < seconds:
            back = at + rng.uniform(*REJOIN_S)
            steps.append((start_ms + int(at * 1000), index, who, "occupant.left", number))
            number += 1
            steps.append((start_ms + int(back * 1000), index, who, "occupant.joined", number))
            at = back + rng.expovariate(1 / RECONNECT_EVERY_S)
    return steps


def _snapshot_times(host: int, hosts: int, start_ms: int, seconds: float) -> list[Step]:
    # Hosts started at different times: their snapshots are spread over the interval.
    at, out = (host + 0.5) * SNAPSHOT_EVERY_S / hosts, []
    while at < seconds:
        out.append((start_ms + int(at * 1000), -1, "", "rooms.snapshot", 0))
        at += SNAPSHOT_EVERY_S
    return out


def plan(
    fleet: Fleet, start_ms: int, seconds: float, seed: int = SEED
) -> list[list[dict[str, Any]]]:
    """Every host's events in `seq` order (the order a Prosody module sends them in), with
    each snapshot listing who is present in that host's rooms at its moment."""
    rng = random.Random(seed)
    hosts = len(fleet.hosts)
    steps: list[list[Step]] = [[] for _ in range(hosts)]
    for index in range(len(fleet.meetings)):
        steps[fleet.host_of(index)] += _reconnects(rng, index, start_ms, seconds)
    for host in range(hosts):
        steps[host] += _snapshot_times(host, hosts, start_ms, seconds)
    # By time; at the same millisecond a snapshot (index -1) comes first, in the plan and in
    # the presence it lists alike.
    return [_events(fleet, h, sorted(s, key=lambda s: (s[0], s[1]))) for h, s in enumerate(steps)]


def _events(fleet: Fleet, host: int, steps: Sequence[Step]) -> list[dict[str, Any]]:
    # Who is present in each of the host's rooms: participant -> (session number, joined at).
    present: dict[int, dict[str, tuple[int, int]]] = {}
    for index in range(host, len(fleet.meetings), len(fleet.hosts)):
        present[index] = {who: (0, fleet.joined_ms) for who in _people(index)[1:]}
    out = []
    for at, index, who, kind, number in steps:
        if kind == "rooms.snapshot":
            out.append(_snapshot(fleet, host, present, at))
            continue
        if kind == "occupant.left":
            present[index].pop(who)
        else:
            present[index][who] = (number, at)
        out.append(_occupant(fleet, kind, index, who, number, at))
    return out


def _snapshot(
    fleet: Fleet, host: int, present: dict[int, dict[str, tuple[int, int]]], at: int
) -> dict[str, Any]:
    rooms = []
    for index, people in present.items():
        occupants = [
            {"session": _session(index, who, number), "user_id": who, "joined_at": joined}
            for who, (number, joined) in people.items()
        ]
        rooms.append({"room": _room(fleet, index), "occupants": occupants})
    event = _header(fleet, host, "rooms.snapshot", at)
    event.update(interval_s=int(SNAPSHOT_EVERY_S), rooms=rooms)
    return event


# --- frontend requests --------------------------------------------------------------------


def frontend_requests(
    kind: str, count: int, consultations: int, token_for: Callable[[str], str], seed: int
) -> list[Request]:
    """`count` requests of one kind, each for a random consultation's doctor or patient."""
    rng = random.Random(seed)
    out: list[Request] = []
    for _ in range(count):
        apt, doctor, patient = _people(rng.randrange(consultations))
        auth = ("Authorization", f"Bearer {token_for(rng.choice((doctor, patient)))}")
        if kind == "initiate":
            body = compact({"appointmentId": apt})
            out.append(("POST", "/api/video-calls/initiate", body,
                        (auth, ("Content-Type", "application/json"))))  # fmt: skip
        elif kind == "token":
            out.append(("GET", f"/api/video-calls/token/{apt}", "", (auth,)))
        else:
            out.append(("GET", f"/api/video-calls/{apt}", "", (auth,)))
    return out


# --- the run ------------------------------------------------------------------------------


def _send(client: Client, request: Request) -> tuple[int, float]:
    """(status, ms); 0 for a request that failed on the connection, which reopens next time."""
    began = time.perf_counter()
    try:
        return client.send(request)
    except (OSError, http.client.HTTPException):
        client.close()
        return 0, (time.perf_counter() - began) * 1000


def _prosody(url: str, secret: str, events: list[dict[str, Any]], stop_at: float) -> Tally:
    """One host's module: each event sent at its `occurred_at`, one at a time, in seq order.
    A slow answer delays the host's next events; that shows as their lag, as it would."""
    tally, client = Tally(), Client(url)
    try:
        for event in events:
            wait = event["occurred_at"] / 1000 - time.time()
            if wait > 0:
                time.sleep(wait)
            if time.time() > stop_at:
                break  # the rest is counted as unsent
            status, ms = _send(client, _signed(secret, event))
            lag = time.time() * 1000 - event["occurred_at"]
            name = "snapshots" if event["type"] == "rooms.snapshot" else "events"
            tally.record(name, ms, status == 204)
            if status == 204:
                tally.lag.append(lag)
    finally:
        client.close()
    return tally


def _frontend(url: str, name: str, requests: list[Request], start: float, stop: float) -> Tally:
    """Requests at a steady FRONTEND_RPS: the n-th is due at start + n / FRONTEND_RPS, so
    after a slow answer the ones already due go at once and the rate holds."""
    tally, client = Tally(), Client(url)
    try:
        for n, request in enumerate(requests):
            due = start + n / FRONTEND_RPS
            if due >= stop:
                break
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            status, ms = _send(client, request)
            tally.record(name, ms, status == 200)
    finally:
        client.close()
    return tally


def _threads(work: list[Callable[[], Tally]], timeout_s: float) -> list[Tally]:
    results: list[Tally | None] = [None] * len(work)

    def runner(i: int) -> None:
        results[i] = work[i]()

    threads = [threading.Thread(target=runner, args=(i,), daemon=True) for i in range(len(work))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    # A thread still blocked on a request after the drain is left to its socket timeout.
    return [r for r in results if r is not None]


def _merged(tallies: list[Tally]) -> Tally:
    out = Tally()
    for t in tallies:
        for name, values in t.latency.items():
            out.latency.setdefault(name, []).extend(values)
        for name, count in t.errors.items():
            out.errors[name] = out.errors.get(name, 0) + count
        out.lag += t.lag
    return out


def drive(
    kind: str,
    url: str,
    secret: str,
    fleet: Fleet,
    frontends: dict[str, list[Request]],
    seconds: float,
) -> FleetPoint:
    start = time.time() + LEAD_S
    schedules = plan(fleet, int(start * 1000), seconds)
    stop = start + seconds
    work: list[Callable[[], Tally]] = [
        functools.partial(_prosody, url, secret, events, stop + DRAIN_S) for events in schedules
    ]
    work += [functools.partial(_frontend, url, n, r, start, stop) for n, r in frontends.items()]
    tally = _merged(_threads(work, LEAD_S + seconds + DRAIN_S + 5))
    planned = sum(len(events) for events in schedules)
    # Events of a sender that fell a whole drain behind, or is still stuck in a request.
    sent = sum(len(tally.latency.get(name, [])) for name in ("events", "snapshots"))
    return point(kind, fleet, seconds, tally, planned - sent)


def _latency(name: str, values: list[float], errors: int) -> EndpointLatency:
    return EndpointLatency(
        name, len(values), _ms(values, 0.5), _ms(values, 0.99), max(values, default=0.0), errors
    )


def point(kind: str, fleet: Fleet, seconds: float, tally: Tally, unsent: int) -> FleetPoint:
    endpoints = tuple(
        _latency(name, tally.latency.get(name, []), tally.errors.get(name, 0))
        for name in (*API, "events", "snapshots")
    )
    return FleetPoint(
        kind, len(fleet.meetings), len(fleet.hosts), seconds, endpoints,
        _ms(tally.lag, 0.5), _ms(tally.lag, 0.99), max(tally.lag, default=0.0), unsent,
    )  # fmt: skip


def run(
    kind: str,
    env_for: Callable[[str], dict[str, str]],
    start: Callable[[str, str], servers.Server],
    token_for: Callable[[str], str],
    seconds: float = DURATION_S,
) -> FleetPoint:
    """The fleet run on one fresh database of `kind` (data.ops_dataset named "fleet")."""
    dataset = data.ops_dataset(kind, "fleet", CONSULTATIONS)
    env = env_for(dataset.url)
    try:
        fleet = make_fleet(CONSULTATIONS, HOSTS)
        _prepared(dataset.url, env, functools.partial(_store_into, initial_joins(fleet)))
        count = int(seconds * FRONTEND_RPS) + 1
        frontends = {
            name: frontend_requests(name, count, CONSULTATIONS, token_for, SEED + n)
            for n, name in enumerate(API)
        }
        srv = start("fleet", dataset.url)
        try:
            return drive(kind, srv.url, env["PROSODY_EVENTS_SECRET"], fleet, frontends, seconds)
        finally:
            servers.stop(srv)
    finally:
        data.drop_ops(kind, "fleet")
