"""What `synchronous=FULL` costs: signed events and admin writes on SQLite, NORMAL against FULL.

`python -m bench.durability [--events N] [--dir PATH]` runs the real application (in process,
over Starlette's TestClient, so the HTTP framing is there but no socket) on a database file
in `--dir` (default: bench/.durability, on the repository's own disk, never a tmpfs), once
per mode, and prints a Markdown table. With FULL every commit waits for an fsync of the WAL;
with NORMAL it does not, and a power cut can roll back commits already answered 2xx.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from harness.clock import midday_window, real_now_ms
from harness.env import base_env
from harness.eventstream import Stream, signed
from service import clock
from service.app import create_app
from service.auth.dev import mint_dev_token
from service.config import load_settings
from service.store import db
from service.store.migrate import migrate


def _timed(count: int, one: Callable[[int], Any]) -> list[float]:
    took = []
    for index in range(count):
        began = time.perf_counter()
        one(index)
        took.append((time.perf_counter() - began) * 1000)
    return took


def measure(mode: str, folder: Path, events: int) -> dict[str, float]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"durability-{mode}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db.SQLITE_PRAGMAS["synchronous"] = mode
    settings = load_settings(base_env(DATABASE_URL=f"sqlite:///{path}", SWEEP_INTERVAL="0"))
    app = create_app(settings)
    migrate()
    secret = settings.prosody_events_secrets[0]
    admin = {"Authorization": f"Bearer {settings.admin_api_key}"}
    with TestClient(app) as client:
        for uid in ("doc", "pat"):
            client.put(f"/api/admin/users/{uid}", json={"firstName": uid}, headers=admin)
        body = {
            "doctorUid": "doc",
            "patientUid": "pat",
            **midday_window(real_now_ms()),
            "status": "CONFIRMED",
        }
        client.put("/api/admin/appointments/a1", json=body, headers=admin)
        doc = {"Authorization": f"Bearer {mint_dev_token(settings, 'doc')}"}
        assert client.post(
            "/api/video-calls/initiate", json={"appointmentId": "a1"}, headers=doc
        ).is_success
        stream = Stream()
        t0 = real_now_ms() - events * 1_000

        def event(index: int) -> None:
            # Joins and leaves of one room: each event is one transaction of real work.
            at = t0 + index * 1_000
            session = f"s{index // 2}"
            made = (
                stream.joined("appointment_a1", "m1", session, "pat", at)
                if index % 2 == 0
                else stream.left("appointment_a1", "m1", session, "pat", at)
            )
            raw, headers = signed(secret, made)
            assert client.post("/api/prosody/events", content=raw, headers=headers).is_success

        def user(index: int) -> None:
            response = client.put(
                f"/api/admin/users/u{index}", json={"firstName": "U"}, headers=admin
            )
            assert response.is_success

        event_ms = _timed(events, event)
        user_ms = _timed(events, user)
    db.SQLITE_PRAGMAS["synchronous"] = "full"
    return {
        "event_p50": statistics.median(event_ms),
        "event_p99": statistics.quantiles(event_ms, n=100)[98],
        "events_per_s": 1000 * len(event_ms) / sum(event_ms),
        "user_p50": statistics.median(user_ms),
        "user_p99": statistics.quantiles(user_ms, n=100)[98],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.durability")
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--dir", type=Path, default=Path(__file__).with_name(".durability"))
    args = parser.parse_args(argv)
    clock.use_source(None)
    try:
        results = {mode: measure(mode, args.dir, args.events) for mode in ("normal", "full")}
    finally:
        shutil.rmtree(args.dir, ignore_errors=True)
    print(f"{args.events} sequential requests of each kind, SQLite in WAL mode\n")
    print("| synchronous | event p50 ms | event p99 ms | events/s | admin PUT p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for mode, r in results.items():
        print(
            f"| {mode.upper()} | {r['event_p50']:.2f} | {r['event_p99']:.2f} | "
            f"{r['events_per_s']:.0f} | {r['user_p50']:.2f} | {r['user_p99']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
