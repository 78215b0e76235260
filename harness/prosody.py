"""A real Prosody on loopback with mod_video_call_events, a signature-checking receiver and
XMPP clients, shared by tests/prosody, tests/deploy and bench/prosody_events.py. Installs
nothing."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import slixmpp

REPO = Path(__file__).resolve().parents[1]
DOMAIN = "localhost"
MUC = "conference.localhost"
LOBBY = "lobby.localhost"
TOLERANCE_S = 300  # the contract's timestamp window

# (label, launcher): Prosody 13 from bookworm-backports, 0.12 unpacked by scripts/install-prosody.
CANDIDATES = [
    ("13", "/usr/bin/prosody"),
    ("0.12", "/opt/prosody-0.12/usr/bin/prosody"),
]


def available_prosodies() -> list[tuple[str, str]]:
    return [(label, path) for label, path in CANDIDATES if os.access(path, os.X_OK)]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --------------------------------------------------------------------------------------------
# Receiver
# --------------------------------------------------------------------------------------------


def signature_valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The contract's check: any space-separated v1 signature over "<id>.<ts>.<body>"."""
    event_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (event_id and timestamp.isdigit() and signatures):
        return False
    if abs(time.time() - int(timestamp)) > TOLERANCE_S:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = event_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


@dataclass
class Attempt:
    """One request as received, whatever the answer."""

    at: float
    headers: dict[str, str]
    body: bytes
    status: int | None  # None: no answer (hang)


@dataclass
class Receiver:
    """The service side of the contract on loopback, with knobs for failure scenarios."""

    secret: str
    port: int = field(default_factory=free_port)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give first, in order
    hang: bool = False
    quiet: bool = False  # bench: keep no attempt log
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: set[str] = field(default_factory=set)
    _release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver.handle(headers, body)
                if status is None:
                    self.close_connection = True
                    return
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client that gives up (the module's timeout) is expected; anything else,
                # such as a failed check in handle(), is kept for the test to see.
                error = sys.exc_info()[1]
                if not isinstance(error, ConnectionError):
                    receiver.errors.append(repr(error))

        self._release.clear()
        self._server = Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Down: connections are refused until start() again."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, headers: dict[str, str], body: bytes) -> int | None:
        with self._lock:
            if self.hang:
                status: int | None = None
            elif self.statuses:
                status = self.statuses.pop(0)
            elif not signature_valid(self.secret, headers, body):
                status = 401
            else:
                event = json.loads(body)
                assert event["id"] == headers["webhook-id"], "webhook-id differs from body id"
                assert headers.get("content-type") == "application/json"
                if event["id"] in self._seen:
                    self.duplicates += 1
                else:
                    self._seen.add(event["id"])
                    self.accepted.append(event)
                status = 204
            if not self.quiet:
                self.attempts.append(Attempt(time.time(), headers, body, status))
        if status is None:
            # Hold the request without answering, as a stuck receiver does; give up only when
            # released or long after the module's timeout.
            self._release.wait(30)
        return status

    def release(self) -> None:
        with self._lock:
            self.hang = False
        self._release.set()

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.accepted)

    def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.accepted) >= count, timeout, f"{count} events")
        return self.events()


# --------------------------------------------------------------------------------------------
# Prosody
# --------------------------------------------------------------------------------------------

CONFIG = """\
-- Generated by tests/prosody: a throwaway Prosody on loopback.
run_as_root = true
daemonize = false
pidfile = {pidfile}
data_path = {data_path}
plugin_paths = {{ {plugins} }}
modules_enabled = {{ "saslauth"; "roster"; "disco"; "ping" }}
modules_disabled = {{ "posix"; "s2s"; "tls" }}
log = {{ {log_level} = {logfile} }}
c2s_ports = {{ {c2s_port} }}
c2s_interfaces = {{ "127.0.0.1" }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "test_token"
test_token_secret = {token_secret}
storage = "internal"

VirtualHost "{domain}"

Component "{muc}" "muc"
    modules_enabled = {{ "video_call_events"; "test_control"{main_modules} }}
    test_lobby_muc = {lobby_muc}
    muc_room_locking = false
    muc_tombstones = false
    restrict_room_creation = false
    test_control_dir = {dir}
    test_control_timing = {timing}
    video_call_events_url = {url}
    video_call_events_secret = {secret}
{options}
{lobby}"""

# A lobby MUC component beside the main one, as docker-jitsi-meet's lobby.<domain>, with the
# module loaded there too (XMPP_LOBBY_MUC_MODULES); its own control folder. Its rooms are made
# only by mod_test_lobby on the main MUC (mod_muc_lobby_rooms's stand-in), never by a knock.
LOBBY_COMPONENT = """
Component "{lobby}" "muc"
    modules_enabled = {{ "video_call_events"; "test_control" }}
    muc_room_locking = false
    muc_tombstones = false
    restrict_room_creation = true
    test_control_dir = {dir}
    video_call_events_url = {url}
    video_call_events_secret = {secret}
    video_call_events_main_muc = {muc}
{options}
"""


def lua(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "{ " + "; ".join(lua(v) for v in value) + " }"
    raise TypeError(value)


@dataclass
class Prosody:
    binary: str
    dir: Path
    url: str
    secret: str | list[str]
    options: dict[str, Any] = field(default_factory=dict)
    timing: bool = False
    log_level: str = "debug"
    lobby: bool = False
    c2s_port: int = field(default_factory=free_port)
    token_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> Path:
        plugins = [str(REPO / "prosody"), str(REPO / "tests" / "prosody")]
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        options = "\n".join(f"    {k} = {lua(v)}" for k, v in self.options.items())
        lobby = ""
        if self.lobby:
            (self.dir / "lobby").mkdir(exist_ok=True)
            lobby = LOBBY_COMPONENT.format(
                lobby=LOBBY,
                dir=lua(str(self.dir / "lobby")),
                url=lua(self.url),
                secret=lua(self.secret),
                muc=lua(MUC),
                options=options,
            )
        config = CONFIG.format(
            dir=lua(str(self.dir)),
            pidfile=lua(str(self.dir / "prosody.pid")),
            data_path=lua(str(self.dir / "data")),
            logfile=lua(str(self.dir / "prosody.log")),
            plugins="; ".join(lua(p) for p in plugins),
            log_level=self.log_level,
            c2s_port=self.c2s_port,
            token_secret=lua(self.token_secret),
            domain=DOMAIN,
            muc=MUC,
            timing=lua(self.timing),
            url=lua(self.url),
            secret=lua(self.secret),
            options=options,
            lobby=lobby,
            main_modules='; "test_lobby"' if self.lobby else "",
            lobby_muc=lua(LOBBY),
        )
        path = self.dir / "prosody.cfg.lua"
        path.write_text(config)
        return path

    def start(self) -> None:
        config = self.write_config()
        stdout = (self.dir / "stdout.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "--config", str(config)],
            stdout=stdout,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
        )
        stdout.close()
        wait_until(self._listening, 15, "Prosody to listen")

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"Prosody exited:\n{self.output()}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.c2s_port), timeout=0.2),
        ):
            return True
        return False

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no index save, no `occupant.left` for anyone."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def output(self) -> str:
        parts = []
        for name in ("stdout.log", "prosody.log"):
            path = self.dir / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-6000:])
        return "\n".join(parts)

    def log(self) -> str:
        path = self.dir / "prosody.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def control(self, request: str, reply: str | None = None, timeout: float = 10) -> None:
        """Ask mod_test_control for something; wait for its reply file if one is named."""
        (self.dir / request).touch()
        if reply is not None:
            path = self.dir / reply
            wait_until(path.exists, timeout, f"Prosody to answer {request}")
            path.unlink()
        else:
            wait_until(lambda: not (self.dir / request).exists(), timeout, request)

    def reload_module(self) -> None:
        self.control("reload-video_call_events", "reloaded-video_call_events")

    def destroy_room(self, room: str) -> None:
        self.control(f"destroy-{room}")

    def kick(self, room: str, nick: str, lobby: bool = False) -> None:
        folder = self.dir / "lobby" if lobby else self.dir
        staged = folder / f"staged-kick-{room}"
        staged.write_text(nick)
        staged.rename(folder / f"kick-{room}")  # never seen half-written
        wait_until(lambda: not (folder / f"kick-{room}").exists(), 10, f"kick-{room}")

    def members_only(self, room: str) -> None:
        self.control(f"members-only-{room}", f"members-only-done-{room}")

    def admit(self, room: str, bare_jid: str, affiliation: str = "member") -> None:
        """Make `bare_jid` a member of the main room, as Jitsi's lobby approval does (its
        mediated invite, through Prosody's members_only), or give it `affiliation`."""
        staged = self.dir / f"staged-member-{room}"
        staged.write_text(f"{bare_jid} {affiliation}")
        staged.rename(self.dir / f"member-{room}")
        wait_until((self.dir / f"member-done-{room}").exists, 10, f"member-{room}")
        (self.dir / f"member-done-{room}").unlink()

    def token(self, user_id: str, lobby_bypass: bool | None = None) -> str:
        user: dict[str, Any] = {"id": user_id, "name": "ignored"}
        if lobby_bypass is not None:
            user["lobby_bypass"] = lobby_bypass
        claims = {"context": {"user": user}, "room": "*"}
        return jwt.encode(claims, self.token_secret, algorithm="HS256")

    def spooled(self) -> int:
        """Events in the module's spool not yet marked delivered (index saved lazily)."""
        lines = {
            int(m.group(1)): path.read_bytes().count(b"\n")
            for path in (self.dir / "data").rglob("segment*.spool")
            if (m := re.search(r"segment(\d+)\.spool$", path.name))
        }
        index = next((self.dir / "data").rglob("video_call_events/index.dat"), None)
        segment, offset = 1, 0
        if index is not None:
            text = index.read_text()
            segment = int(re.search(r"segment\"?\]? = (\d+)", text).group(1))  # type: ignore[union-attr]
            offset = int(re.search(r"offset\"?\]? = (\d+)", text).group(1))  # type: ignore[union-attr]
        return sum(n for s, n in lines.items() if s >= segment) - offset


# --------------------------------------------------------------------------------------------
# XMPP clients (slixmpp on one background event loop, driven synchronously from tests)
# --------------------------------------------------------------------------------------------


class Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 15) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(drain(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Client:
    """One XMPP connection (one occupant session once it joins a room)."""

    def __init__(self, loop: Loop, port: int, user: str, password: str) -> None:
        self.loop = loop
        self.port = port
        self.xmpp: slixmpp.ClientXMPP = loop.run(self._make(f"{user}@{DOMAIN}/web", password))
        self.rooms: dict[str, str] = {}

    async def _make(self, jid: str, password: str) -> slixmpp.ClientXMPP:
        xmpp = slixmpp.ClientXMPP(jid, password)
        xmpp.enable_starttls = False
        xmpp.enable_direct_tls = False
        xmpp.enable_plaintext = True
        xmpp.register_plugin("xep_0045")
        xmpp.register_plugin("xep_0199")
        xmpp.plugin["feature_mechanisms"].unencrypted_plain = True
        started: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def on_start(_: Any) -> None:
            xmpp.send_presence()
            if not started.done():
                started.set_result(True)

        def on_failure(_: Any) -> None:
            if not started.done():
                started.set_exception(AssertionError(f"login failed for {jid}"))

        xmpp.add_event_handler("session_start", on_start)
        xmpp.add_event_handler("failed_auth", on_failure)
        xmpp.connect("127.0.0.1", self.port)
        await asyncio.wait_for(started, 10)
        return xmpp

    def join(self, room: str, nick: str, muc: str = MUC) -> None:
        async def join() -> None:
            await self.xmpp.plugin["xep_0045"].join_muc_wait(
                slixmpp.JID(f"{room}@{muc}"), nick, maxstanzas=0, timeout=10
            )

        self.loop.run(join())
        self.rooms[room if muc == MUC else f"{room}@{muc}"] = nick

    async def _synced(self) -> None:
        # Prosody handles one connection's stanzas in order: once a ping is answered, what
        # was sent before it (and the hooks it fired) has been handled.
        await self.xmpp.plugin["xep_0199"].ping(slixmpp.JID(DOMAIN), timeout=10)

    def say(self, room: str, text: str) -> None:
        async def say() -> None:
            self.xmpp.send_message(mto=slixmpp.JID(f"{room}@{MUC}"), mbody=text, mtype="groupchat")
            await self._synced()

        self.loop.run(say())

    def leave(self, room: str, muc: str = MUC) -> None:
        nick = self.rooms.pop(room if muc == MUC else f"{room}@{muc}")

        async def leave() -> None:
            self.xmpp.plugin["xep_0045"].leave_muc(slixmpp.JID(f"{room}@{muc}"), nick)
            await self._synced()

        self.loop.run(leave())

    def disconnect(self) -> None:
        async def disconnect() -> None:
            await self.xmpp.disconnect(wait=1)

        with contextlib.suppress(Exception):
            self.loop.run(disconnect())


@dataclass
class Stack:
    """Prosody, receiver and clients of one test."""

    prosody: Prosody
    receiver: Receiver
    loop: Loop
    clients: list[Client] = field(default_factory=list)

    def client(self, user: str, user_id: str | None = None) -> Client:
        password = self.prosody.token(user_id) if user_id else "no-token"
        client = Client(self.loop, self.prosody.c2s_port, user, password)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.disconnect()
        self.loop.close()
        self.prosody.stop()
        self.receiver.stop()


@contextlib.contextmanager
def stack(
    binary: str,
    workdir: Path,
    options: dict[str, Any] | None = None,
    *,
    secret: str | list[str] | None = None,
    receiver_secret: str | None = None,
    statuses: list[int] | None = None,
    hang: bool = False,
    receiver_up: bool = True,
    timing: bool = False,
    log_level: str = "debug",
    lobby: bool = False,
) -> Iterator[Stack]:
    """Prosody configured with `secret` (a new one by default), its receiver checking
    `receiver_secret` (the first of `secret` by default), set up before Prosody starts."""
    secret = secret or new_secret()
    first = secret[0] if isinstance(secret, list) else secret
    receiver = Receiver(receiver_secret or first, statuses=list(statuses or []), hang=hang)
    if receiver_up:
        receiver.start()
    prosody = Prosody(
        binary,
        workdir,
        receiver.url,
        secret,
        options or {},
        timing=timing,
        log_level=log_level,
        lobby=lobby,
    )
    loop = Loop()
    result = Stack(prosody, receiver, loop)
    try:
        prosody.start()
        yield result
    finally:
        result.close()


StackFactory = Callable[..., Stack]


def copy_logs(workdir: Path, target: Path) -> None:
    """Keep Prosody's logs of a failed test next to pytest's output."""
    with contextlib.suppress(OSError):
        shutil.copy(workdir / "prosody.log", target)
