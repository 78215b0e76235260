"""Helpers for the image tests: the Docker client, a running container, and a stand-in for
Google's certificate endpoint reached the way the service reaches it in production (HTTPS
through an HTTP proxy, verified against a CA bundle), all on this machine's loopback."""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
# Debian's client: the newer one on PATH needs a buildx plugin this machine does not have.
DOCKER = "/usr/bin/docker"
IMAGE = "videocalls:latest"
# The port the entry point serves on and the HEALTHCHECK probes; with --network host it is
# the host's own 127.0.0.1:8000.
PORT = 8000
GOOGLE_HOST = "www.googleapis.com"
CERT_PATH = "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"


def docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result


def tree_source_sha256() -> str:
    result = subprocess.run(
        [str(REPO / "scripts/source-hash")], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()


def require_image() -> None:
    """A Docker engine and an image built from this tree (.ci/run builds it; locally
    `make test-image`): skipped on a developer machine without them, a failure in CI."""
    require(Path(DOCKER).exists(), f"no Docker client at {DOCKER} (apt-get install docker.io)")
    info = subprocess.run([DOCKER, "info"], capture_output=True, timeout=30, check=False)
    require(info.returncode == 0, "no Docker engine answers (scripts/start-dockerd)")
    label = '{{index .Config.Labels "videocalls.source.sha256"}}'
    inspect = docker("image", "inspect", "--format", label, IMAGE, check=False)
    require(inspect.returncode == 0, f"no image {IMAGE} (scripts/build-image)")
    require(
        inspect.stdout.strip() == tree_source_sha256(),
        f"{IMAGE} was built from other sources than this tree's (make test-image rebuilds it)",
    )


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def http(method: str, url: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    return status, (json.loads(raw) if raw else None)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class KeyPair:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def key_pair(
    common_name: str, *, issuer: KeyPair | None = None, ca: bool = False, dns: str | None = None
) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return KeyPair(key, cert)


@dataclass
class GoogleCerts:
    """An HTTP proxy on 127.0.0.1 that answers CONNECT www.googleapis.com:443 itself: TLS with
    a certificate from a test CA (the container trusts it through REQUESTS_CA_BUNDLE), then
    Google's certificate document with the test signing key's certificate. Any other host or
    path is refused and recorded."""

    folder: Path
    certs: dict[str, str]
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        ca = key_pair("videocalls image test CA", ca=True)
        leaf = key_pair(GOOGLE_HOST, issuer=ca, dns=GOOGLE_HOST)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ca_file = self.folder / "ca.pem"
        self.ca_file.write_text(ca.cert_pem)
        (self.folder / "leaf.pem").write_text(leaf.cert_pem)
        (self.folder / "leaf.key").write_bytes(leaf.key_pem())
        self.folder.chmod(0o755)
        self.ca_file.chmod(0o644)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(self.folder / "leaf.pem", self.folder / "leaf.key")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_CONNECT(self) -> None:
                if self.path != f"{GOOGLE_HOST}:443":
                    outer.refused.append(self.path)
                    self.send_error(403)
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                with outer.tls.wrap_socket(self.connection, server_side=True) as tls:
                    reader = tls.makefile("rb")
                    request_line = reader.readline().decode().split()
                    while reader.readline() not in (b"\r\n", b"\n", b""):
                        pass  # headers
                    path = request_line[1] if len(request_line) > 1 else ""
                    outer.requests.append(path)
                    if path == CERT_PATH:
                        body = json.dumps(outer.certs).encode()
                        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        head += "Cache-Control: public, max-age=3600\r\n"
                    else:
                        body = b"not found"
                        head = "HTTP/1.1 404 Not Found\r\n"
                    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                    tls.sendall(head.encode() + body)
                self.close_connection = True

        return Handler
