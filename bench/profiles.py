"""Where a worker's time goes under load: its threads' CPU time by stack (bench/sampler.py).

One uvicorn worker is one Python process, and nearly all of its CPU time is spent holding
the GIL, so CPU time is what bounds its throughput. Stacks are grouped into cost centres by
their frames (the first matching rule wins, in the order of CENTRES), and the hottest leaf
functions are listed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Each profile samples a run of this long at 32 connections.
PROFILE_S = 6

# (name, substrings of a frame "function (file:line)" that put a sample in it)
CENTRES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("request log (service/logs.py, logging)", ("service/logs.py", "/logging/")),
    ("JWT sign/verify (PyJWT, hmac)", ("/jwt/", "hmac.py")),
    ("event verify/parse (service/events)", ("service/receiver/",)),
    ("presence derivation (service/domain)", ("service/domain/",)),
    ("database: driver (sqlite3, psycopg2)", ("sqlite3", "psycopg2")),
    ("database: peewee (query building, rows)", ("peewee.py", "playhouse/")),
    ("thread hand-off (anyio to_thread, threading)",
     ("anyio/to_thread", "anyio/_backends", "threading.py", "concurrent/")),
    ("HTTP server and event loop (uvicorn, httptools, asyncio)",
     ("uvicorn/", "httptools", "asyncio/", "uvloop")),
    ("Starlette (routing, requests, responses)", ("starlette/",)),
    ("service code (api, use cases)", ("service/",)),
)  # fmt: skip


@dataclass(frozen=True)
class Profile:
    cpu_us: int  # CPU time sampled, all threads
    centres: list[tuple[str, float]]  # name, share of samples
    leaves: list[tuple[str, float]]  # hottest innermost frames


def summarize(raw: Path, top: int = 8) -> Profile | None:
    if not raw.exists():
        return None
    centres: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        leaves[_short(frames[-1])] += count
        centres[_centre(frames)] += count
    if not total:
        return None
    return Profile(
        total,
        [(name, n / total) for name, n in centres.most_common()],
        [(name, n / total) for name, n in leaves.most_common(top)],
    )


def _centre(frames: list[str]) -> str:
    for name, markers in CENTRES:
        if any(marker in frame for frame in frames for marker in markers):
            return name
    return "other (interpreter, stdlib)"


def _short(frame: str) -> str:
    # "function (/long/path/site-packages/pkg/mod.py:123)" -> "function (pkg/mod.py:123)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for cut in ("site-packages/", f"{REPO}/", "lib/python3"):
        if cut in where:
            where = where.split(cut, 1)[1]
    return f"{name} ({where})"
