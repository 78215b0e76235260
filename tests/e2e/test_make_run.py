"""The README's quick start: `make run` (scripts/dev-run) serves, and its printed curl works."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import repo_root
from tests.e2e.conftest import free_port


def test_dev_run_prints_a_curl_that_returns_a_token(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("JITSI_", "DATABASE_", "AUTH_"))
    }
    env.update(DATA_DIR=str(tmp_path / "data"), PORT=str(port))
    process = subprocess.Popen(
        [str(repo_root() / "scripts" / "dev-run")],
        env=env,
        cwd=repo_root(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Uvicorn running" in line:
                break
        text = "".join(output)
        assert "Uvicorn running" in text, text
        command = re.search(r"curl -s -X POST .*?-d '[^']*'", text.replace("\\\n", " "), re.S)
        assert command, text
        args = shlex.split(command.group(0))
        url = args[args.index("-X") + 2]
        headers = dict(h.split(": ", 1) for i, h in enumerate(args) if i and args[i - 1] == "-H")
        body = args[args.index("-d") + 1]
        response = httpx.post(url, content=body, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["userRole"] == "doctor"
        assert response.json()["meetingLink"].startswith(
            "https://meet.localhost/appointment_demo-appt-1?jwt="
        )
        # Secrets were generated once, privately, and are reused by the next run.
        dev_env = tmp_path / "data" / "dev.env"
        assert oct(dev_env.stat().st_mode & 0o777) == "0o600"
        assert "JITSI_APP_SECRET=" in dev_env.read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def test_dev_run_on_a_busy_port_stops_before_touching_the_database(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "PORT": str(port)}
        result = subprocess.run(
            [str(repo_root() / "scripts" / "dev-run")],
            env=env,
            cwd=repo_root(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert "PORT=8001 make run" in result.stderr
    assert not (tmp_path / "data").exists()  # no secrets generated, nothing migrated
