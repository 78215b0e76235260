"""Bench for mod_video_call_events on a real Prosody with its receiver on loopback.

Measures the time each hook of the module adds to Prosody's event handling (logged by the
test-only mod_test_control, which hooks just above and below the module's priorities), the
time to drain 10,000 spooled events after an outage, and the delivery rate.

    .venv/bin/python bench/prosody_events.py [--events 10000] [--prosody /usr/bin/prosody]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import slixmpp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.prosody.prosody_harness import (  # noqa: E402
    CANDIDATES,
    MUC,
    Client,
    Stack,
    available_prosodies,
    stack,
    wait_until,
)

TIMING = re.compile(r"hook-timing (\S+) ([0-9.]+)")
CLIENTS = 20


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def cycles(client: Client, index: int, count: int) -> None:
    """Join and leave a room of one's own `count` times: 4 events per cycle."""
    xmpp = client.xmpp
    muc = xmpp.plugin["xep_0045"]
    for n in range(count):
        room = slixmpp.JID(f"bench_{index}_{n}@{MUC}")
        await muc.join_muc_wait(room, "p", maxstanzas=0, timeout=30)
        muc.leave_muc(room, "p")
    await xmpp.plugin["xep_0199"].ping(slixmpp.JID("localhost"), timeout=30)


def generate(bench: Stack, total_events: int) -> float:
    """Produce about `total_events` events from CLIENTS clients; returns the seconds taken."""
    clients = [bench.client(f"user{i}", f"user{i}") for i in range(CLIENTS)]
    per_client = max(1, total_events // 4 // CLIENTS)

    async def run_all() -> None:
        await asyncio.gather(*(cycles(c, i, per_client) for i, c in enumerate(clients)))

    began = time.monotonic()
    bench.loop.run(run_all(), timeout=900)
    return time.monotonic() - began


def hook_times(log: str) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for name, seconds in TIMING.findall(log):
        times.setdefault(name, []).append(float(seconds) * 1000)
    return times


def machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    return {
        "cpu": model.group(1).strip() if model else platform.processor(),
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def prosody_version(binary: str) -> str:
    root = Path(binary).resolve().parents[1]
    path = root / "lib" / "prosody" / "prosody.version"
    return path.read_text().strip() if path.exists() else "?"


def run(binary: str, events: int) -> dict[str, Any]:
    options = {
        "video_call_events_timeout": 5,
        "video_call_events_retry_max": 1,  # resume promptly once the receiver is back
        "video_call_events_snapshot_interval": 0,
    }
    with tempfile.TemporaryDirectory() as workdir, stack(
        binary, Path(workdir), options, receiver_up=False, timing=True, log_level="info"
    ) as bench:
        bench.receiver.quiet = True
        generating = generate(bench, events)
        spooled = bench.prosody.spooled()
        bench.receiver.start()
        began = time.monotonic()
        wait_until(lambda: len(bench.receiver.accepted) >= spooled, 600, "the drain")
        drain = time.monotonic() - began
        accepted = bench.receiver.events()
        assert bench.receiver.errors == [], bench.receiver.errors
        assert [e["source"]["seq"] for e in accepted] == list(range(1, len(accepted) + 1))
        times = hook_times(bench.prosody.log())
        uname = subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip()
    all_hooks = [t for values in times.values() for t in values]
    return {
        "prosody": prosody_version(binary),
        "arch": uname,
        "generated_s": generating,
        "spooled": spooled,
        "drain_s": drain,
        "rate": spooled / drain,
        "hooks": {
            name: (len(v), statistics.median(v), percentile(v, 0.99), max(v))
            for name, v in sorted(times.items())
        },
        "all": (len(all_hooks), statistics.median(all_hooks), percentile(all_hooks, 0.99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--prosody", action="append", help="launcher(s); default: all found")
    args = parser.parse_args()
    binaries = args.prosody or [path for _, path in available_prosodies()]
    if not binaries:
        sys.exit(f"no Prosody found (looked for {[p for _, p in CANDIDATES]})")
    print(machine())
    for binary in binaries:
        result = run(binary, args.events)
        print(f"Prosody {result['prosody']} ({binary}):")
        print(f"  {result['spooled']} events spooled in {result['generated_s']:.1f}s")
        print(f"  drained in {result['drain_s']:.2f}s = {result['rate']:.0f} events/s")
        count, median, p99 = result["all"]
        print(f"  hooks: {count} calls, median {median:.3f} ms, p99 {p99:.3f} ms")
        for name, (n, med, p, worst) in result["hooks"].items():
            print(f"    {name}: n={n} median={med:.3f} ms p99={p:.3f} ms max={worst:.3f} ms")


if __name__ == "__main__":
    main()
