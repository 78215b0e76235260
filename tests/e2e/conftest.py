"""End-to-end fixtures: the real `videocalls serve` in its own process, spoken to over HTTP.

The server's clock runs on, so these tests do not freeze the in-process one either: they read
the real clock (`harness.clock.real_now_ms`) and book appointments with `midday_window`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import repo_root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env={**os.environ, **env},
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(autouse=True)
def clock() -> None:
    """Overrides the frozen clock of tests/conftest.py: here both sides read the real one."""


@dataclass
class Server:
    url: str
    env: dict[str, str]
    process: subprocess.Popen[str]

    def logs(self) -> str:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=10)
        return out


def start_server(env: dict[str, str], workers: int = 1) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--port", str(port), "--workers", str(workers)],
        env={**os.environ, **env},
        cwd=repo_root(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, _ = process.communicate()
            raise AssertionError(f"server exited with {process.returncode}: {out}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return Server(url, env, process)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError("server did not become ready within 20 s")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
    if server.process.stdout:
        server.process.stdout.close()


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[Server]:
    running = start_server(env)
    yield running
    stop_server(running)
