"""Server processes for the bench: start, time to ready, worker RSS, and a sure stop.

Every process started here is recorded and stopped by `stop_all()` (run.py calls it in a
`finally`, also on Ctrl-C and SIGTERM), by its own pid and the pids of its own workers.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 60


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    workers: int
    ready_s: float = 0.0
    worker_pids: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


_running: list[Server] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: the ppid follows the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _find_workers(server: Server) -> list[int]:
    """uvicorn serves in its own process with 1 worker, in spawned children with more."""
    if server.workers == 1:
        return [server.process.pid]
    children = [
        pid
        for pid in _children(server.process.pid)
        if "multiprocessing" in _cmdline(pid) and "resource_tracker" not in _cmdline(pid)
    ]
    return sorted(children)


def start(name: str, args: list[str], env: dict[str, str], log_dir: Path, workers: int) -> Server:
    """Start `python args...` with `--port` added; return once /readyz answers 200."""
    port = free_port()
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 (closed in stop())
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, *args, "--port", str(port), "--workers", str(workers)],
        env={**os.environ, **env},
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()  # the child holds its own descriptor
    server = Server(name, port, process, log_path, workers)
    _running.append(server)
    deadline = began + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop(server)
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
        if _ready(port):
            server.ready_s = time.monotonic() - began
            break
        time.sleep(0.01)
    else:
        stop(server)
        raise RuntimeError(f"{name} was not ready within {READY_TIMEOUT_S} s")
    # With several workers the first one ready answers; wait for the others to exist.
    for _ in range(200):
        server.worker_pids = _find_workers(server)
        if len(server.worker_pids) >= workers:
            break
        time.sleep(0.05)
    return server


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size so far, in MiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def worker_peaks(server: Server) -> list[float]:
    return [peak_rss_mb(pid) for pid in server.worker_pids]


def stop(server: Server) -> None:
    """SIGTERM the server (uvicorn stops its workers), then SIGKILL what is left."""
    process = server.process
    workers = [pid for pid in server.worker_pids if pid != process.pid]
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    for pid in workers:
        # Only a leftover worker of ours: that pid, still running from this repository.
        cwd = Path(f"/proc/{pid}/cwd")
        with contextlib.suppress(OSError):
            if cwd.resolve() == REPO:
                os.kill(pid, signal.SIGKILL)
    if server in _running:
        _running.remove(server)


def stop_all() -> None:
    for server in list(_running):
        stop(server)
