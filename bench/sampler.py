"""Where a worker's time goes, seen from inside it: every thread's CPU time, by stack.

py-spy reads another process's memory, which this machine kind refuses (it cannot even read
the target's Python version), so a profiled service is started through this module (one
worker: one process): `python -m bench.sampler CONTROL OUTPUT serve --port ...`. While the
file CONTROL exists, a thread wakes every INTERVAL_S, reads each other thread's CPU clock
and stack, and charges the CPU time that thread used since the last look to the stack it is
in now. A thread that ran meanwhile (holding the GIL, or in C code that released it) used
CPU; one waiting for a lock, a socket or the GIL used none, so idle threads weigh nothing.
When CONTROL is removed, the stacks are written to OUTPUT as lines of
"frame;frame;... microseconds", root first (py-spy's raw format), for bench/profiles.py.

The CPU a thread used just before it began to wait is charged to where it waits (the
worker lock, the next query, the event loop's poll), so those frames are over-counted as
leaves; the cost centres, which look at every frame of a stack, are less affected.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType

INTERVAL_S = 0.002
POLL_S = 0.05


def _stack(frame: FrameType | None) -> str:
    frames = []
    while frame is not None:
        code = frame.f_code
        frames.append(f"{code.co_name} ({code.co_filename}:{frame.f_lineno})")
        frame = frame.f_back
    return ";".join(reversed(frames))


def _cpu_ns(ident: int) -> int | None:
    try:
        return time.clock_gettime_ns(time.pthread_getcpuclockid(ident))
    except OSError:  # the thread ended between the listing and the read
        return None


def _record(control: Path) -> Counter[str]:
    me = threading.get_ident()
    stacks: Counter[str] = Counter()
    last: dict[int, int] = {}
    while control.exists():
        for ident, frame in sys._current_frames().items():
            used = None if ident == me else _cpu_ns(ident)
            if used is None:
                continue
            before = last.get(ident)
            last[ident] = used
            if before is not None and used > before:
                stacks[_stack(frame)] += (used - before) // 1000
        time.sleep(INTERVAL_S)
    return stacks


def _sample_forever(control: Path, output: Path) -> None:
    while True:
        while not control.exists():
            time.sleep(POLL_S)
        stacks = _record(control)
        partial = output.with_suffix(".partial")
        partial.write_text("".join(f"{stack} {us}\n" for stack, us in stacks.items() if us))
        partial.replace(output)


def main(argv: list[str]) -> int:
    control, output, *service_args = argv
    threading.Thread(
        target=_sample_forever, args=(Path(control), Path(output)), daemon=True
    ).start()
    from service.cli import main as service_main

    return service_main(service_args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
