"""The service image's sources, checked without a Docker engine: hadolint and shellcheck, the
rules we hold the Dockerfile to, and the entry point run with stand-ins. The image itself is
built and run in tests/image."""

from __future__ import annotations

import base64
import fnmatch
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.deploy.deploy_support import REPO, clean_env, require_tool

DOCKERFILE = REPO / "docker" / "Dockerfile"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
SHELL_SCRIPTS = (
    ENTRYPOINT,
    REPO / "docker" / "gen-secrets.sh",
    REPO / "scripts/install-deploy-tools",
    REPO / "scripts/build-image",
    REPO / "scripts/start-dockerd",
)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def arguments(keyword: str) -> list[str]:
    return [rest for kw, rest in instructions() if kw == keyword]


def test_hadolint() -> None:
    hadolint = require_tool("hadolint", "scripts/install-deploy-tools")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script: Path) -> None:
    shellcheck = require_tool("shellcheck", "scripts/install-deploy-tools")
    assert os.access(script, os.X_OK), f"{script} is not executable"
    result = subprocess.run(
        [shellcheck, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout


def test_base_image_is_a_pinned_slim_python_311() -> None:
    (default,) = [a.split("=", 1)[1] for a in arguments("ARG") if a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", default), default
    for image in arguments("FROM"):
        assert image.split()[0] == "${PYTHON_IMAGE}", image


def test_runs_as_a_numeric_non_root_user() -> None:
    users = arguments("USER")
    assert users, "no USER: the service would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)
    assert f"--uid {uid}" in DOCKERFILE.read_text()


def test_healthcheck_probes_healthz_with_python() -> None:
    (check,) = arguments("HEALTHCHECK")
    assert "CMD" in check and "/healthz" in check
    assert "python" in check
    assert "curl" not in check and "wget" not in check, "slim images have neither"


def test_dependencies_come_from_the_locks_with_hashes() -> None:
    runs = arguments("RUN")
    for lock in ("requirements/build.txt", "requirements/runtime.txt"):
        assert any(f"pip install --quiet --require-hashes -r {lock}" in run for run in runs), lock
    # The project itself resolves nothing: every dependency came from the lock above.
    assert any("pip install --quiet --no-deps --no-build-isolation" in run for run in runs)


def test_no_syntax_directive() -> None:
    # `# syntax=` makes BuildKit fetch a frontend image from a registry: offline builds fail.
    assert not re.search(r"^#\s*syntax\s*=", DOCKERFILE.read_text(), re.MULTILINE | re.IGNORECASE)


def test_entrypoint_migrates_then_serves() -> None:
    (entry,) = arguments("ENTRYPOINT")
    assert "videocalls-entrypoint" in entry
    assert any(
        "docker/entrypoint.sh /usr/local/bin/videocalls-entrypoint" in c for c in arguments("COPY")
    )
    assert arguments("CMD") == ['["serve"]']


def test_no_secrets_in_the_image() -> None:
    for kw, rest in instructions():
        if kw in ("ENV", "ARG", "LABEL"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_.]*)=", rest)
            for name in names:
                assert not re.search(r"SECRET|PASSWORD|TOKEN|API_KEY", name, re.I), name
    assert "whsec_" not in DOCKERFILE.read_text()


def dockerignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matches a path or a parent."""
    ignored = False
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/").removeprefix("**/")
        for candidate in candidates:
            name = candidate.rsplit("/", 1)[-1]
            if fnmatch.fnmatchcase(candidate, pattern) or fnmatch.fnmatchcase(name, pattern):
                ignored = not negated
                break
    return ignored


def test_build_context_holds_what_copy_needs_and_no_secrets() -> None:
    sources = []
    for rest in arguments("COPY"):
        words = [w for w in shlex.split(rest) if not w.startswith("--")]
        if "--from=" in rest:
            continue
        sources += words[:-1]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert not dockerignored(source), f"{source} is excluded by .dockerignore"
    for secret in (".env", "data/videocalls.db", ".venv/bin/python", ".git/config", "bench/x"):
        assert dockerignored(secret), f"{secret} would be sent to the Docker daemon"


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    """A `videocalls` that records its arguments (and fails `migrate` as often as the file
    `migrate-failures` says) and a `sleep` that does not wait."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "videocalls").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{tmp_path}/calls"\n'
        'if [ "$1" = migrate ]; then\n'
        f'  f="{tmp_path}/migrate-failures"\n'
        '  n=$(cat "$f" 2>/dev/null || echo 0)\n'
        '  if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$f"; exit 1; fi\n'
        "fi\n"
    )
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    return tmp_path


def run_entrypoint(stubs: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = clean_env(**env)
    environment["PATH"] = f"{stubs / 'bin'}:{environment['PATH']}"
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def calls(stubs: Path) -> list[str]:
    path = stubs / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_entrypoint_default_migrates_once_then_serves(stubs: Path) -> None:
    data = stubs / "data"
    data.mkdir()
    result = run_entrypoint(
        stubs, DATABASE_URL=f"sqlite:///{data}/videocalls.db", VIDEOCALLS_WORKERS="3"
    )
    assert result.returncode == 0, result.stderr
    assert calls(stubs) == ["migrate", "serve --host 0.0.0.0 --port 8000 --workers 3"]


def test_entrypoint_retries_migrations_while_the_database_starts(stubs: Path) -> None:
    (stubs / "migrate-failures").write_text("2")
    result = run_entrypoint(stubs, DATABASE_URL="postgresql://u:p@postgres.meet.jitsi/videocalls")
    assert result.returncode == 0, result.stderr
    assert calls(stubs) == ["migrate"] * 3 + ["serve --host 0.0.0.0 --port 8000 --workers 2"]
    assert "attempt 2 of 20" in result.stderr


def test_entrypoint_gives_up_without_serving(stubs: Path) -> None:
    (stubs / "migrate-failures").write_text("100")
    result = run_entrypoint(stubs, DATABASE_URL="postgresql://u:p@postgres.meet.jitsi/videocalls")
    assert result.returncode == 1
    assert calls(stubs) == ["migrate"] * 20
    assert "not starting" in result.stderr


def test_entrypoint_names_the_fix_for_an_unwritable_data_folder(stubs: Path) -> None:
    result = run_entrypoint(stubs, DATABASE_URL=f"sqlite:///{stubs}/missing/videocalls.db")
    assert result.returncode == 1
    assert "chown 10001:10001" in result.stderr
    assert calls(stubs) == []


def test_entrypoint_runs_other_commands_without_migrating(stubs: Path) -> None:
    result = run_entrypoint(stubs, "import", "/data/clinic.json")
    assert result.returncode == 0, result.stderr
    assert calls(stubs) == ["import /data/clinic.json"]


def test_entrypoint_migrate_with_the_real_cli(tmp_path: Path) -> None:
    # The real `videocalls migrate` through the entry point, on a fresh SQLite file.
    database = tmp_path / "videocalls.db"
    environment = clean_env(
        APP_ENV="production",
        DATABASE_URL=f"sqlite:///{database}",
        JITSI_APP_ID="videocalls",
        JITSI_APP_SECRET=os.urandom(32).hex(),
        JITSI_DOMAIN="meet.example.com",
        FIREBASE_PROJECT_ID="demo-clinic",
        # Production takes presence from Prosody (or must say PRESENCE_SOURCE=clients).
        PROSODY_EVENTS_SECRET="whsec_" + base64.b64encode(os.urandom(32)).decode(),
    )
    environment["PATH"] = f"{REPO / '.venv' / 'bin'}:{environment['PATH']}"
    for _ in range(2):  # the second run finds nothing to do
        result = subprocess.run(
            ["sh", str(ENTRYPOINT), "migrate"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    assert database.stat().st_size > 0
