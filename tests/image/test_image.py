"""The production image, built by scripts/build-image and run by a real Docker engine as the
overlay runs it: read-only root, tmpfs /tmp, uid 10001, a host data folder owned by
10001:10001, APP_ENV=production. .ci/run builds the image first; locally `make test-image`.

The engine here has no bridge of its own (dockerd --bridge=none --iptables=false), so the
container shares the host's network (--network host) and everything it talks to is on
127.0.0.1. The compose test lets docker-compose make the overlay's meet.jitsi network, a bridge
inside this machine, and reaches the service through the published loopback port."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sqlite3
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
from packaging.markers import Marker

from tests.clock import FrozenClock, appointment_around
from tests.deploy.deploy_support import FIXTURE, clean_env, make_checkout, require_tool
from tests.image.image_support import (
    IMAGE,
    PORT,
    REPO,
    GoogleCerts,
    docker,
    http,
    key_pair,
    port_free,
    require_image,
    wait_for,
)

FIREBASE_PROJECT = "demo-clinic"
KID = "image-test-key"
RUNTIME_LOCK = REPO / "requirements" / "runtime.txt"
BASE_URL = f"http://127.0.0.1:{PORT}"
SIGNING = key_pair("securetoken.system.gserviceaccount.com")

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module", autouse=True)
def image() -> None:
    require_image()


def in_image(script: str, user: str = "10001:10001") -> subprocess.CompletedProcess[str]:
    """A shell script in a throwaway container of the image, by default as its own user."""
    options = ["--rm", "--network", "none", "--user", user, "--entrypoint", "sh"]
    return docker("run", *options, IMAGE, "-c", script)


def locked_pins() -> dict[str, str]:
    """name -> version of requirements/runtime.txt's pins that apply on Linux, CPython 3.11."""
    environment = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                   "python_version": "3.11", "python_full_version": "3.11.2",
                   "implementation_name": "cpython", "platform_python_implementation": "CPython",
                   "platform_machine": "x86_64"}  # fmt: skip
    pins = {}
    for line in RUNTIME_LOCK.read_text().splitlines():
        if not line or line[0] in " #":
            continue
        requirement, _, marker = line.rstrip(" \\").partition(";")
        name, _, version = requirement.strip().partition("==")
        if marker.strip() and not Marker(marker.strip()).evaluate(environment):
            continue
        pins[name.lower().replace("_", "-")] = version
    return pins


def test_labels_record_the_version_and_the_lock() -> None:
    labels = json.loads(
        docker("image", "inspect", "--format", "{{json .Config.Labels}}", IMAGE).stdout
    )
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert labels["org.opencontainers.image.version"] == project["version"]
    lock_sha256 = hashlib.sha256(RUNTIME_LOCK.read_bytes()).hexdigest()
    assert labels["videocalls.lock.runtime.sha256"] == lock_sha256
    inside = in_image("sha256sum /opt/venv/requirements-runtime.txt").stdout.split()[0]
    assert inside == lock_sha256


def test_installed_versions_are_exactly_the_locked_ones() -> None:
    frozen = in_image("pip freeze --all --exclude videocalls --exclude pip").stdout
    installed = {}
    for line in frozen.splitlines():
        name, _, version = line.partition("==")
        installed[name.lower().replace("_", "-")] = version
    assert installed == locked_pins()


def test_pip_check_passes() -> None:
    assert "No broken requirements" in in_image("pip check").stdout


def test_no_compilers_tests_or_caches() -> None:
    script = r"""
        for tool in gcc cc c++ make; do command -v "$tool" && echo "compiler: $tool"; done
        site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        for dir in "$site/tests" "$site/test" /src /root/.cache /app/.cache /tmp/pip-*; do
          [ -e "$dir" ] && echo "present: $dir"
        done
        [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null)" ] || echo "present: apt lists"
        python -c 'import setuptools' 2>/dev/null && echo "present: setuptools"
        ls "$site/service/__init__.py" >/dev/null && echo ok
    """
    # As root: the service's user could not even look into /root.
    assert in_image(script, user="0:0").stdout.split() == ["ok"]


@dataclass
class Running:
    name: str
    data: Path
    env: dict[str, str]
    google: GoogleCerts
    started: float

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env['ADMIN_API_KEY']}"}


def service_env(google: GoogleCerts) -> dict[str, str]:
    return {
        "APP_ENV": "production",
        "JITSI_APP_ID": "videocalls",
        "JITSI_APP_SECRET": secrets.token_hex(32),
        "JITSI_DOMAIN": "meet.example.com",
        "AUTH_MODE": "firebase",
        "FIREBASE_PROJECT_ID": FIREBASE_PROJECT,
        "ADMIN_API_KEY": secrets.token_hex(32),
        "PROSODY_EVENTS_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        # Google's certificates through the stand-in (image_support.GoogleCerts).
        "HTTPS_PROXY": google.proxy_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "REQUESTS_CA_BUNDLE": "/run/test-ca/ca.pem",
    }


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    if not port_free(PORT):
        pytest.fail(f"127.0.0.1:{PORT} is taken: the container shares the host network")
    root = tmp_path_factory.mktemp("image")
    data = root / "data"
    data.mkdir()
    os.chown(data, 10001, 10001)  # what the operator guide has operators do
    google = GoogleCerts(root / "ca", {KID: SIGNING.cert_pem})
    env = service_env(google)
    env_file = root / "service.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    name = f"videocalls-image-test-{secrets.token_hex(4)}"
    started = time.monotonic()
    docker(
        "run", "--detach", "--name", name, "--network", "host",
        "--read-only", "--tmpfs", "/tmp:size=16M,mode=1777,noexec", "--user", "10001:10001",
        "--volume", f"{data}:/data", "--volume", f"{google.folder}:/run/test-ca:ro",
        "--env-file", str(env_file), IMAGE,
    )  # fmt: skip
    try:
        yield Running(name, data, env, google, started)
    finally:
        docker("rm", "--force", name, check=False)
        google.close()


def health(name: str) -> str:
    return docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()


def test_migrates_turns_healthy_and_ready(running: Running) -> None:
    wait_for(lambda: health(running.name) != "starting", 120, "the first HEALTHCHECK")
    logs = docker("logs", running.name).stderr + docker("logs", running.name).stdout
    assert health(running.name) == "healthy", logs
    status, body = http("GET", f"{BASE_URL}/readyz")
    assert status == 200, body
    with sqlite3.connect(running.data / "videocalls.db") as db:
        applied = [row[0] for row in db.execute("SELECT name FROM schema_migrations")]
    migrations = sorted(p.stem for p in (REPO / "service/store/migrations").glob("0*.py"))
    assert applied == migrations
    assert (running.data / "videocalls.db").stat().st_uid == 10001


def test_signed_test_event_from_inside_is_accepted(running: Running) -> None:
    wait_for(lambda: http("GET", f"{BASE_URL}/readyz")[0] == 200, 120, "/readyz")
    result = docker("exec", running.name, "videocalls-test-event", check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: "), result.stdout
    event_id = result.stdout.split()[-1]
    with sqlite3.connect(running.data / "videocalls.db") as db:
        stored = db.execute("SELECT type FROM prosody_events WHERE id = ?", (event_id,)).fetchall()
    assert stored == [("room.created",)]


def firebase_token(uid: str, now: int) -> str:
    claims = {
        "iss": f"https://securetoken.google.com/{FIREBASE_PROJECT}",
        "aud": FIREBASE_PROJECT,
        "auth_time": now - 60,
        "user_id": uid,
        "sub": uid,
        "iat": now - 60,
        "exp": now + 3540,
        "firebase": {"identities": {}, "sign_in_provider": "custom"},
    }
    return jwt.encode(claims, SIGNING.key, algorithm="RS256", headers={"kid": KID})


def test_token_request_with_a_firebase_id_token(running: Running, clock: FrozenClock) -> None:
    wait_for(lambda: http("GET", f"{BASE_URL}/readyz")[0] == 200, 120, "/readyz")
    for uid in ("doc", "pat"):
        body = {"firstName": uid.title(), "lastName": "Test", "email": f"{uid}@example.test"}
        status, answer = http("PUT", f"{BASE_URL}/api/admin/users/{uid}", body, **running.admin())
        assert status == 200, answer
    appointment = {"doctorUid": "doc", "patientUid": "pat", "status": "CONFIRMED",
                   **appointment_around(clock.ms)}  # fmt: skip
    status, answer = http(
        "PUT", f"{BASE_URL}/api/admin/appointments/appt-image", appointment, **running.admin()
    )
    assert status == 200, answer

    bearer = {"Authorization": f"Bearer {firebase_token('doc', clock.ms // 1000)}"}
    status, answer = http(
        "POST", f"{BASE_URL}/api/video-calls/initiate", {"appointmentId": "appt-image"}, **bearer
    )
    assert status == 200, answer
    assert answer["userRole"] == "doctor" and answer["isModerator"] is True
    claims = jwt.decode(
        answer["jitsiToken"],
        running.env["JITSI_APP_SECRET"],
        algorithms=["HS256"],
        options={"verify_aud": False},
    )
    assert claims["room"] == answer["videoCall"]["roomName"]
    # The certificates came over TLS through the proxy, and from nowhere else.
    assert running.google.requests == [
        "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
    ]
    assert running.google.refused == []

    forged = key_pair("attacker")
    token = jwt.encode(jwt.decode(bearer["Authorization"][7:], options={"verify_signature": False}),
                       forged.key, algorithm="RS256", headers={"kid": KID})  # fmt: skip
    status, answer = http(
        "POST", f"{BASE_URL}/api/video-calls/initiate", {"appointmentId": "appt-image"},
        Authorization=f"Bearer {token}",
    )  # fmt: skip
    assert status == 401, answer


def test_sigterm_exits_cleanly_within_10_s_and_keeps_what_it_confirmed(running: Running) -> None:
    wait_for(lambda: http("GET", f"{BASE_URL}/readyz")[0] == 200, 120, "/readyz")
    body = {"firstName": "Last", "lastName": "Write", "email": "last@example.test"}
    status, answer = http("PUT", f"{BASE_URL}/api/admin/users/last-write", body, **running.admin())
    assert status == 200, answer

    sent = time.monotonic()
    docker("kill", "--signal", "TERM", running.name)
    exit_code = docker("wait", running.name, timeout=15).stdout.strip()
    elapsed = time.monotonic() - sent
    logs = docker("logs", running.name)
    assert exit_code == "0", logs.stderr[-2000:]
    assert elapsed < 10, f"{elapsed:.1f} s"
    assert "Traceback" not in logs.stderr + logs.stdout
    with sqlite3.connect(running.data / "videocalls.db") as db:
        users = db.execute("SELECT uid FROM users WHERE uid = 'last-write'").fetchall()
    assert users == [("last-write",)]


def test_compose_overlay_serves_healthz_on_the_published_port(tmp_path: Path) -> None:
    compose = require_tool("docker-compose", "scripts/install-deploy-tools")
    checkout = make_checkout(tmp_path, FIXTURE)
    assert checkout.gen_secrets().returncode == 0
    http_port = 18010
    if not port_free(http_port):
        pytest.fail(f"127.0.0.1:{http_port} is taken")
    checkout.set("VIDEOCALLS_HTTP_PORT", str(http_port))
    checkout.set("VIDEOCALLS_IMAGE", IMAGE)
    data = Path(checkout.env()["CONFIG"]) / "videocalls"
    data.mkdir(parents=True)
    os.chown(data, 10001, 10001)
    project = f"videocalls-image-test-{secrets.token_hex(3)}"
    command = [compose, "-p", project, "-f", "docker-compose.yml", "-f", "docker-compose.jitsi.yml"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, *args], cwd=checkout.root, env=clean_env(),
                              capture_output=True, text=True, timeout=180, check=False)  # fmt: skip

    try:
        up = run("up", "--detach", "--no-deps", "--no-build", "videocalls")
        assert up.returncode == 0, up.stderr
        url = f"http://127.0.0.1:{http_port}/healthz"

        def answers() -> bool:
            try:
                return http("GET", url)[0] == 200
            except OSError:
                return False

        try:
            wait_for(answers, 90, url)
        except AssertionError:
            raise AssertionError(run("logs", "videocalls").stdout[-3000:]) from None
        ps = run("ps", "--quiet", "videocalls").stdout.split()
        assert len(ps) == 1
        inspect = docker(
            "inspect", "--format", "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}", ps[0]
        )
        assert inspect.stdout.split() == ["true", "10001:10001"]
    finally:
        run("down", "--volumes", "--timeout", "10")
