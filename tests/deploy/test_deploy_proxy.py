"""The operator guide's reverse-proxy examples publish exactly the routes they name (issue 33):
both blocks are taken from docs/operator-guide.md as written, run in real Caddy and nginx on
loopback (plain HTTP instead of the certificate, a stand-in service as the upstream), and every
route is asked for: the frontends' reach the service, nothing else does, the console and the
admin API only from an allowed address, and the client never chooses its X-Forwarded-For.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.deploy_support import REPO, require_tool
from tests.e2e.conftest import free_port

GUIDE = REPO / "docs" / "operator-guide.md"
PUBLISHED = [
    ("GET", "/api/video-calls"),
    ("GET", "/api/video-calls?status=COMPLETED"),
    ("POST", "/api/video-calls/initiate"),
    ("GET", "/api/video-calls/token/appt-1"),
    ("PATCH", "/api/video-calls/abc/status"),
    ("GET", "/api/video-calls/stats"),
    ("OPTIONS", "/api/video-calls/initiate"),
]
OPERATORS = [
    ("GET", "/console"),
    ("GET", "/console/console.js"),
    ("PUT", "/api/admin/users/doc"),
    ("GET", "/api/admin/console/day"),
]
NEVER = [
    ("POST", "/api/prosody/events"),
    ("POST", "/api/event-sync/events/muc-room-created"),
    ("GET", "/metrics"),
    ("GET", "/readyz"),
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("GET", "/"),
    ("GET", "/api/video-callsX"),
    ("GET", "/consoles"),
    ("GET", "/api/admin"),
    # Not /API/video-calls: Caddy matches paths without regard to case, so that one reaches
    # the service, whose router is case-sensitive and answers 404.
]


def guide_block(language: str) -> str:
    blocks: list[str] = re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    assert len(blocks) == 1, f"one {language} block expected in the operator guide"
    return blocks[0]


@dataclass
class Upstream:
    """The service's stand-in: records each request's path and X-Forwarded-For."""

    port: int = field(default_factory=free_port)
    seen: list[tuple[str, str, str]] = field(default_factory=list)

    def __enter__(self) -> Upstream:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                forwarded = self.headers.get("x-forwarded-for", "")
                upstream.seen.append((self.command, self.path, forwarded))
                self.send_response(200)
                self.send_header("Content-Length", "8")
                self.end_headers()
                self.wfile.write(b"upstream")

            do_GET = do_POST = do_PUT = do_PATCH = do_OPTIONS = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def as_local(config: str, upstream: Upstream, allow_loopback: bool) -> str:
    config = config.replace("127.0.0.1:8010", f"127.0.0.1:{upstream.port}")
    if allow_loopback:
        # The clinic's network, as the operator writes it, becomes this machine's.
        config = config.replace("192.0.2.0/24", "127.0.0.0/8")
    return config


def caddy(tmp_path: Path, config: str, port: int) -> subprocess.Popen[bytes]:
    binary = require_tool("caddy", "scripts/install-deploy-tools")
    site = config.replace("api.example.com {", f"http://127.0.0.1:{port} {{", 1)
    assert site != config, "the guide's Caddy site is api.example.com"
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text("{\n\tadmin off\n\tauto_https off\n}\n" + site)
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    return subprocess.Popen(
        [binary, "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def nginx(tmp_path: Path, config: str, port: int) -> subprocess.Popen[bytes]:
    binary = require_tool("nginx", "scripts/install-deploy-tools")
    server = re.sub(r"\n\s*ssl_certificate(_key)?\s[^;]*;", "", config)
    server = server.replace("listen 443 ssl;", f"listen 127.0.0.1:{port};", 1)
    assert "ssl" not in server and f"127.0.0.1:{port};" in server
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"""daemon off;
master_process off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
{server}
}}
"""
    )
    return subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(params=["caddy", "nginx"])
def proxy_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def running(kind: str, tmp_path: Path, upstream: Upstream, allow_loopback: bool) -> Iterator[str]:
    language = "caddyfile" if kind == "caddy" else "nginx"
    config = as_local(guide_block(language), upstream, allow_loopback)
    port = free_port()
    start = caddy if kind == "caddy" else nginx
    process = start(tmp_path, config, port)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                httpx.get(f"{url}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def reaches(url: str, upstream: Upstream, method: str, path: str) -> bool:
    before = len(upstream.seen)
    response = httpx.request(
        method,
        f"{url}{path}",
        headers={"X-Forwarded-For": "203.0.113.66"},
        content=b"{}" if method in ("POST", "PUT", "PATCH") else None,
        timeout=10,
    )
    passed = len(upstream.seen) > before
    assert passed == (response.text == "upstream"), (method, path, response.status_code)
    if passed:
        # The proxy says who the client is; the client cannot.
        assert upstream.seen[-1][2] == "127.0.0.1", upstream.seen[-1]
    else:
        # nginx redirects /api/admin to /api/admin/ (301), itself behind the allow-list.
        assert response.status_code in (301, 403, 404), (method, path, response.status_code)
    return passed


@pytest.mark.parametrize("allow_loopback", [False, True], ids=["outsider", "clinic"])
def test_the_guide_s_proxy_publishes_only_what_it_names(
    proxy_kind: str, tmp_path: Path, allow_loopback: bool
) -> None:
    with Upstream() as upstream:
        for url in running(proxy_kind, tmp_path, upstream, allow_loopback):
            for method, path in PUBLISHED:
                assert reaches(url, upstream, method, path), (method, path)
            for method, path in OPERATORS:
                assert reaches(url, upstream, method, path) is allow_loopback, (method, path)
            for method, path in NEVER:
                assert not reaches(url, upstream, method, path), (method, path)
