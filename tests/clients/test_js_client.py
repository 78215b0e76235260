"""clients/js: its `node --test` suite, which starts a real `videocalls serve` itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.conftest import repo_root, require


def test_js_client_suite_passes_against_a_real_service() -> None:
    node = shutil.which("node")
    require(node is not None, "node is not installed (apt-get install nodejs)")
    assert node is not None
    client = repo_root() / "clients" / "js"
    tests = sorted(str(p) for p in (client / "test").glob("*.test.js"))
    assert tests
    result = subprocess.run(
        [node, "--test", *tests],
        cwd=client,
        # The suite runs the service with this interpreter (the checkout's .venv).
        env={**os.environ, "VIDEOCALLS_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "# fail 0" in result.stdout


def test_js_client_types_compile_and_refuse_misuse() -> None:
    client = repo_root() / "clients" / "js"
    tsc = client / "node_modules" / ".bin" / "tsc"
    require(shutil.which("node") is not None, "node is not installed (apt-get install nodejs)")
    require(tsc.exists(), "typescript is not installed: make install-js")
    result = subprocess.run(
        [str(tsc), "-p", "tsconfig.json"],
        cwd=client,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
