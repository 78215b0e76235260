"""bench/sampler.py charges each thread's CPU time to its stack: a busy thread weighs, a
waiting one does not, and bench/profiles.py reads what it writes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from bench import profiles, sampler


def _burn(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(1_000))


def _wait(stop: threading.Event) -> None:
    stop.wait()


def test_cpu_time_goes_to_the_busy_threads_stack(tmp_path: Path) -> None:
    control = tmp_path / "on"
    control.touch()
    stop = threading.Event()
    threads = [threading.Thread(target=f, args=(stop,)) for f in (_burn, _wait)]
    for thread in threads:
        thread.start()
    found: list[Counter[str]] = []
    recorder = threading.Thread(target=lambda: found.append(sampler._record(control)))
    recorder.start()
    # Turned off after 0.4 s, timed by a loop rather than a timer: under faketime (make
    # test's clock reruns) a timed wait may never end.
    began = time.perf_counter()
    while time.perf_counter() - began < 0.4:
        time.sleep(0.01)
    control.unlink()
    recorder.join()
    stop.set()
    for thread in threads:
        thread.join()
    (stacks,) = found
    burning = sum(us for stack, us in stacks.items() if "_burn" in stack)
    waiting = sum(us for stack, us in stacks.items() if "_wait" in stack)
    # The busy thread ran for most of the 0.4 s (sharing the GIL with this one and the
    # sampler); the waiting one used next to no CPU (none, but for a wake-up or two under
    # faketime, whose timed waits poll).
    assert burning > 100_000
    assert waiting < burning / 100
    raw = tmp_path / "stacks.txt"
    raw.write_text("".join(f"{stack} {us}\n" for stack, us in stacks.items() if us))
    summary = profiles.summarize(raw)
    assert summary is not None and summary.cpu_us == sum(stacks.values())
    assert summary.leaves[0][0].startswith(("<genexpr>", "_burn"))


def test_the_sampler_writes_its_stacks_once_turned_off(tmp_path: Path) -> None:
    control, output = tmp_path / "on", tmp_path / "stacks.txt"
    threading.Thread(target=sampler._sample_forever, args=(control, output), daemon=True).start()
    control.touch()
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        sum(i * i for i in range(1_000))
    control.unlink()
    for _ in range(100):
        if output.exists():
            break
        time.sleep(0.02)
    lines = output.read_text().splitlines()
    assert lines and all(line.rsplit(" ", 1)[1].isdigit() for line in lines)
    assert any("test_the_sampler_writes_its_stacks_once_turned_off" in line for line in lines)
