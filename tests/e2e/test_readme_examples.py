"""The README, as a new user follows it: `make run`, the quick-start curl, every API example
in order, `make reset`, and the quick-start curl again. A broken example fails here."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import repo_root
from tests.e2e.conftest import free_port

# curl that fails the script on an HTTP error, printing the answer (the README uses `curl -s`).
STRICT_CURL = r"""
set -euo pipefail
curl() {
  local out code
  out=$(command curl -w '\n%{http_code}' "$@")
  code=${out##*$'\n'}
  printf '%s\n' "${out%$'\n'*}"
  if [ "$code" -ge 400 ]; then echo "HTTP $code from: curl $*" >&2; exit 1; fi
}
"""


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def _readme_steps() -> tuple[str, str]:
    """The quick-start curl, and the API section (its setup lines and its examples)."""
    blocks = _bash_blocks((repo_root() / "README.md").read_text())
    quick = next(b for b in blocks if b.lstrip().startswith("curl -s -X POST"))
    setup = next(b for b in blocks if b.startswith("TOKEN=$("))
    examples = next(b for b in blocks if b.startswith("# Start a call"))
    return quick, setup + examples


def _run(script: str, port: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    moved = script.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace(
        "data/dev.env", "$DATA_DIR/dev.env"
    )
    return subprocess.run(
        ["bash", "-c", STRICT_CURL + moved],
        env=env,
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_readme_quick_start_and_examples_run_in_order(tmp_path: Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JITSI_", "DATABASE_", "AUTH_", "APP_ENV", "ADMIN_", "DEV_"))
    }
    env.update(DATA_DIR=str(tmp_path / "data"), PORT=str(port))
    quick, examples = _readme_steps()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        env=env,
        cwd=repo_root(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.2)

        first = _run(quick, port, env)
        assert first.returncode == 0, first.stderr + first.stdout
        assert '"domain":"meet.localhost"' in first.stdout.replace(" ", "")

        api = _run(examples, port, env)
        assert api.returncode == 0, api.stderr + api.stdout
        answers = api.stdout.replace(" ", "")
        # make run configures the Prosody receiver: the doctor's join, start and end are
        # recorded and change nothing, as the README's comment says (nobody was in Jitsi).
        assert '"status":"COMPLETED"' not in answers
        assert '"verification":"server"' in answers
        assert answers.count('"outcome":"advisory"') >= 3

        # The call is still open: the quick start answers again...
        still = _run(quick, port, env)
        assert still.returncode == 0, still.stderr + still.stdout

        # ...until `make reset`, run beside the live service.
        reset = subprocess.run(
            ["make", "--no-print-directory", "reset"],
            env=env,
            cwd=repo_root(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert reset.returncode == 0, reset.stderr + reset.stdout
        assert "demo data reset" in reset.stdout

        again = _run(quick, port, env)
        assert again.returncode == 0, again.stderr + again.stdout
        assert '"status":"SCHEDULED"' in again.stdout.replace(" ", "")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()
