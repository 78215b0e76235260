"""clients/js/examples/plain.html in real Chromium against a real `videocalls serve`.

Only Jitsi's `external_api.js` is a stand-in (we do not own Jitsi's script): the page loads it
from the call's domain as it would in production, and the browser is answered with a
recording JitsiMeetExternalAPI at that URL. Everything else is real: the ES module, CORS
from a http://localhost page to the service (development's default), the token refresh
request, and the service's answers.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from playwright.sync_api import Browser, expect

from harness.clock import real_now_ms
from harness.env import base_env
from tests.clock import appointment_around
from tests.conftest import repo_root
from tests.e2e.conftest import Server, cli, start_server, stop_server

# Stands in for https://{domain}/external_api.js: records each instance, draws a marker in
# parentNode, and lets the test fire the events Jitsi's iframe would.
STAND_IN = """
window.__jitsi = [];
window.JitsiMeetExternalAPI = class {
  constructor(domain, options) {
    this.domain = domain; this.options = options; this.listeners = {}; this.disposed = false;
    this.frame = document.createElement("div");
    this.frame.className = "stand-in-jitsi";
    this.frame.textContent = options.roomName;
    options.parentNode.appendChild(this.frame);
    window.__jitsi.push(this);
  }
  addListener(event, fn) { (this.listeners[event] ??= []).push(fn); }
  emit(event) { for (const fn of this.listeners[event] ?? []) fn({}); }
  dispose() { this.disposed = true; this.frame.remove(); }
};
"""


@pytest.fixture(autouse=True)
def clock() -> None:
    """The server reads the real clock, so this test does too (as tests/e2e)."""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def static_site() -> Iterator[str]:
    """clients/js served on http://localhost:PORT: the frontend's dev server."""
    handler = functools.partial(_Quiet, directory=str(repo_root() / "clients" / "js"))
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{site.server_address[1]}"
    site.shutdown()
    site.server_close()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Server]:
    env = base_env(
        APP_ENV="development",
        DATABASE_URL=f"sqlite:///{tmp_path / 'browser.db'}",
        SWEEP_INTERVAL="0",
    )
    migrated = cli(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    running = start_server(env)
    admin = {"Authorization": f"Bearer {env['ADMIN_API_KEY']}"}
    for uid in ("doc", "pat"):
        response = httpx.put(
            f"{running.url}/api/admin/users/{uid}", json={"firstName": uid}, headers=admin
        )
        assert response.status_code == 200, response.text
    appointment = {
        "doctorUid": "doc",
        "patientUid": "pat",
        **appointment_around(real_now_ms()),
        "status": "CONFIRMED",
    }
    response = httpx.put(
        f"{running.url}/api/admin/appointments/b1", json=appointment, headers=admin
    )
    assert response.status_code == 200, response.text
    yield running
    stop_server(running)


def test_example_page_opens_the_consultation_and_rejoins_without_reporting(
    service: Server, static_site: str, browser: Browser
) -> None:
    token = cli(service.env, "dev-token", "--uid", "doc").stdout.strip()
    domain = service.env["JITSI_DOMAIN"]
    assert token

    context = browser.new_context()
    try:
        page = context.new_page()
        to_service: list[str] = []
        page.on(
            "request",
            lambda r: (
                to_service.append(f"{r.method} {r.url}") if r.url.startswith(service.url) else None
            ),
        )
        # Nothing may leave the machine; the route added last (Jitsi's script) wins.
        page.route("https://**/*", lambda route: route.abort())
        page.route(
            f"https://{domain}/external_api.js",
            lambda route: route.fulfill(status=200, content_type="text/javascript", body=STAND_IN),
        )
        page.goto(f"{static_site}/examples/plain.html")
        page.fill("input[name=baseUrl]", service.url)
        page.fill("input[name=token]", token)
        page.fill("input[name=appointmentId]", "b1")
        page.click("button[type=submit]")
        expect(page.locator("#status")).to_have_text("In appointment_b1 as doctor", timeout=15_000)
        expect(page.locator(".stand-in-jitsi")).to_have_text("appointment_b1")

        opened = page.evaluate(
            "() => window.__jitsi.map(a => ({domain: a.domain, room: a.options.roomName,"
            " jwt: a.options.jwt, inMeeting: a.options.parentNode.id}))"
        )
        assert len(opened) == 1
        assert opened[0]["domain"] == domain
        assert opened[0]["room"] == "appointment_b1"
        assert opened[0]["inMeeting"] == "meeting"
        claims = jwt.decode(
            opened[0]["jwt"],
            service.env["JITSI_APP_SECRET"],
            algorithms=["HS256"],
            audience=service.env["JITSI_APP_ID"],
        )
        assert claims["room"] == "appointment_b1"
        assert claims["context"]["user"]["id"] == "doc"

        # The doctor hangs up: the page offers a rejoin and tells the service nothing.
        page.evaluate("() => window.__jitsi[0].emit('videoConferenceLeft')")
        expect(page.locator("#status")).to_have_text("You left the consultation.")
        page.click("#rejoin")
        expect(page.locator("#status")).to_have_text("In appointment_b1 again")
        state = page.evaluate("() => window.__jitsi.map(a => [a.disposed, a.options.roomName])")
        assert state == [[True, "appointment_b1"], [False, "appointment_b1"]]
        expect(page.locator(".stand-in-jitsi")).to_have_count(1)

        page.click("#close")
        expect(page.locator(".stand-in-jitsi")).to_have_count(0)
        assert page.evaluate("() => window.__jitsi[1].disposed") is True

        # The CORS preflight passed (the page is on another origin) and no report went out.
        assert f"POST {service.url}/api/video-calls/initiate" in to_service
        assert not [r for r in to_service if r.startswith("PATCH")], to_service
    finally:
        context.close()

    details = httpx.get(
        f"{service.url}/api/video-calls/b1", headers={"Authorization": f"Bearer {token}"}
    )
    assert details.json()["videoCall"]["status"] == "SCHEDULED"
