"""The operator console in real Chromium against a real server, while Prosody's signed events
arrive: sign in, watch the day change live, open a call, switch doctor and day, other views.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from harness.clock import midday_window, real_now_ms
from harness.env import base_env
from harness.eventstream import Stream, signed
from service.auth.dev import mint_dev_token
from service.config import load_settings
from tests.clock import shift_days
from tests.e2e.conftest import Server, free_port, start_server, stop_server

KEY = "videocalls.adminKey"
LIVE_TIMEOUT_MS = 15_000  # the page polls every 4 s
LOAD_BUDGET_MS = 1_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PEOPLE = {
    "doc": ("Ada", "Lovelace"),
    "doc2": ("Bob", "Marley"),
    "pat": ("Pat", "Smith"),
    "pat2": ("Sam", "Jones"),
}


@dataclass
class Clinic:
    server: Server
    admin_key: str
    window: dict[str, str]
    stream: Stream = field(default_factory=Stream)

    def admin(self, method: str, path: str, body: dict[str, Any]) -> None:
        r = httpx.request(
            method,
            f"{self.server.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text

    def book(self, appointment_id: str, doctor: str, patient: str, days: int = 0) -> None:
        window = {
            **self.window,
            "appointmentDate": shift_days(self.window["appointmentDate"], days),
        }
        body = {"doctorUid": doctor, "patientUid": patient, "status": "CONFIRMED", **window}
        self.admin("PUT", f"/api/admin/appointments/{appointment_id}", body)

    def initiate(self, appointment_id: str, uid: str) -> str:
        token = mint_dev_token(load_settings(self.server.env), uid)
        r = httpx.post(
            f"{self.server.url}/api/video-calls/initiate",
            json={"appointmentId": appointment_id},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        call_id: str = r.json()["videoCall"]["id"]
        return call_id

    def event(self, event: dict[str, Any]) -> None:
        body, headers = signed(self.server.env["PROSODY_EVENTS_SECRET"], event)
        r = httpx.post(
            f"{self.server.url}/api/prosody/events", content=body, headers=headers, timeout=30
        )
        assert r.status_code == 204, r.text

    def arrive(self, appointment_id: str, session: str, uid: str, ago_ms: int) -> None:
        room = f"appointment_{appointment_id}"
        self.event(self.stream.joined(room, "m1", session, uid, real_now_ms() - ago_ms))

    def record(self, appointment_id: str, ago_ms: int) -> None:
        """Jibri's recorder starts recording the room (the module's recording.started)."""
        room = self.stream.room(f"appointment_{appointment_id}", "m1")
        recording = {"session": "rec-1", "mode": "file"}
        at = real_now_ms() - ago_ms
        self.event(self.stream.event("recording.started", at, room=room, recording=recording))

    def open_room(self, appointment_id: str, ago_ms: int) -> None:
        room = f"appointment_{appointment_id}"
        self.event(self.stream.created(room, "m1", real_now_ms() - ago_ms))


@pytest.fixture
def clinic(tmp_path: Path) -> Iterator[Clinic]:
    """A migrated SQLite database, a running server, four people (names shown in the page)."""
    from service.store import db
    from service.store.migrate import migrate

    url = f"sqlite:///{tmp_path / 'console.db'}"
    db.bind(db.make_database(url, 2))
    migrate()
    # Webhooks aimed at a port nobody listens on: the console shows them being retried.
    env = base_env(
        DATABASE_URL=url,
        SWEEP_INTERVAL="2",
        WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/hooks",
        WEBHOOK_SECRET=base_env()["PROSODY_EVENTS_SECRET"],
        WEBHOOK_RETRY_DELAYS="60",
    )
    server = start_server(env)
    clinic = Clinic(server, env["ADMIN_API_KEY"], midday_window(real_now_ms()))
    for uid, (first, last) in PEOPLE.items():
        clinic.admin("PUT", f"/api/admin/users/{uid}", {"firstName": first, "lastName": last})
    try:
        yield clinic
    finally:
        stop_server(server)


@dataclass
class Watched:
    page: Page
    errors: list[str]


def open_console(browser: Browser, clinic: Clinic, viewport: dict[str, int]) -> Watched:
    # The browser's day is the appointments' day: it runs in their time zone.
    context: BrowserContext = browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        timezone_id=clinic.window["timezone"],
        locale="en-GB",
    )
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            errors.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.goto(f"{clinic.server.url}/console")
    return Watched(page, errors)


def sign_in_with_keyboard(page: Page, key: str) -> None:
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    field_ = page.get_by_label("Admin key")
    expect(field_).to_be_focused()
    page.keyboard.type(key)
    page.keyboard.press("Enter")


def group(page: Page, name: str) -> Any:
    return page.locator(f'section[data-group="{name}"]')


def test_the_day_live_a_call_doctors_and_health(
    browser: Browser, clinic: Clinic, artifacts: Path
) -> None:
    clinic.book("a-wait", "doc", "pat")
    clinic.book("a-run", "doc2", "pat2")
    clinic.book("a-next", "doc", "pat2", days=1)
    watched = open_console(browser, clinic, DESKTOP)
    page = watched.page
    # The page itself: loaded (script and styles included) in well under a second.
    loaded = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    assert 0 < loaded < LOAD_BUDGET_MS, loaded
    sign_in_with_keyboard(page, clinic.admin_key)
    expect(page.get_by_role("heading", name="Today")).to_be_visible(timeout=LOAD_BUDGET_MS)
    expect(page.get_by_role("navigation", name="Views")).to_be_visible()
    expect(group(page, "waiting")).to_contain_text("None right now")
    expect(group(page, "starting_soon")).to_contain_text("Pat Smith")

    # The patient arrives first: the page shows her waiting, without a reload.
    clinic.initiate("a-wait", "pat")
    clinic.open_room("a-wait", 3 * 60_000)
    clinic.arrive("a-wait", "s-pat", "pat", 3 * 60_000)
    waiting = group(page, "waiting").locator("li", has_text="Pat Smith")
    expect(waiting).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(waiting).to_contain_text("Patient waiting for 3 min")
    expect(waiting).to_contain_text("with Ada Lovelace")

    # Another consultation starts: it moves to "in progress".
    run_id = clinic.initiate("a-run", "doc2")
    clinic.open_room("a-run", 12 * 60_000)
    clinic.arrive("a-run", "s-doc2", "doc2", 12 * 60_000)
    clinic.arrive("a-run", "s-pat2", "pat2", 10 * 60_000)
    clinic.record("a-run", 9 * 60_000)
    running = group(page, "in_progress").locator("li", has_text="Sam Jones")
    expect(running).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(running).to_contain_text("Running for 10 min")
    expect(group(page, "starting_soon")).not_to_contain_text("Sam Jones")
    page.screenshot(path=str(artifacts / "console-today.png"), full_page=True)

    # Open the running call's timeline with the keyboard.
    link = running.get_by_role("link", name="Open the timeline of Sam Jones with Bob Marley")
    link.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Sam Jones with Bob Marley")).to_be_visible()
    assert page.url.endswith(f"#/call/{run_id}")
    timeline = page.locator("#timeline svg")
    expect(timeline).to_have_attribute("role", "img")
    expect(timeline.locator("rect.lane-doctor")).to_have_count(1)
    expect(timeline.locator("rect.lane-recording")).to_have_count(1)  # its own lane, labelled
    expect(timeline.locator("text", has_text="Recording")).to_have_count(1)
    expect(timeline.locator("rect.lane-patient")).to_have_count(1)
    label = timeline.get_attribute("aria-label") or ""
    assert "doctor" in label and "patient" in label and "to now" in label
    transitions = page.locator("#transitions-table tbody")
    expect(transitions).to_contain_text("SCHEDULED")
    expect(transitions).to_contain_text("IN_PROGRESS")
    expect(page.locator("#sessions-table tbody tr")).to_have_count(2)
    expect(page.locator("#audit-table tbody")).to_contain_text("event.received")
    expect(page.locator("#call-webhooks-table tbody")).to_contain_text("call.scheduled")
    page.screenshot(path=str(artifacts / "console-call.png"), full_page=True)

    # Back to the day, then one doctor only, then the next day.
    page.get_by_role("link", name="Back to the day").click()
    expect(group(page, "waiting")).to_contain_text("Pat Smith")
    page.get_by_label("Doctor", exact=True).select_option("doc2")
    expect(group(page, "in_progress")).to_contain_text("Sam Jones")
    expect(page.locator("#groups")).not_to_contain_text("Pat Smith")
    assert "doctor=doc2" in page.url
    page.screenshot(path=str(artifacts / "console-doctor.png"), full_page=True)
    page.get_by_label("Doctor", exact=True).select_option("")
    next_day = shift_days(clinic.window["appointmentDate"], 1)
    page.get_by_label("Day", exact=True).fill(next_day)
    expect(page.get_by_role("heading", name=f"Appointments on {next_day}")).to_be_visible()
    expect(page.locator("#groups li")).to_have_count(1)
    expect(page.locator("#groups")).to_contain_text("Sam Jones")
    expect(page.locator("#groups")).to_contain_text("with Ada Lovelace")
    page.screenshot(path=str(artifacts / "console-next-day.png"), full_page=True)

    # Doctors: today's consultations per doctor.
    page.get_by_role("link", name="Doctors").click()
    rows = page.locator("#doctors-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Ada Lovelace")
    expect(page.locator("#chart svg rect.bar")).to_have_count(30)
    page.screenshot(path=str(artifacts / "console-doctors.png"), full_page=True)

    # Health: the Prosody host as its events show it, and the sweeper running.
    page.get_by_role("link", name="Health").click()
    host = page.locator("#hosts-table tbody tr")
    expect(host).to_have_count(1)
    expect(host).to_contain_text("muc.meet.jitsi")
    expect(host).to_contain_text(clinic.stream.boot_id)
    expect(page.locator("#health-facts")).not_to_contain_text("Never ran", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#health-facts")).to_contain_text("being retried")
    failing = page.locator("#failing-webhooks-table tbody")
    expect(failing).to_contain_text("ConnectError", timeout=LIVE_TIMEOUT_MS)
    page.screenshot(path=str(artifacts / "console-health.png"), full_page=True)

    assert watched.errors == []
    page.context.close()


def test_a_wrong_or_missing_key_shows_the_sign_in_and_never_the_data(
    browser: Browser, clinic: Clinic, artifacts: Path
) -> None:
    clinic.book("a-wait", "doc", "pat")
    watched = open_console(browser, clinic, DESKTOP)
    page = watched.page
    # Missing: the sign-in, and no request for data was made.
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("navigation", name="Views")).to_be_hidden()

    # Wrong: refused, and nothing is kept.
    wrong = secrets.token_hex(32)
    with page.expect_response("**/api/admin/console/health") as refused:
        sign_in_with_keyboard(page, wrong)
    assert refused.value.status == 403
    expect(page.get_by_role("alert").first).to_contain_text("not accepted")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate(f"sessionStorage.getItem('{KEY}')") is None
    assert "Pat Smith" not in page.content()
    page.screenshot(path=str(artifacts / "console-signin-refused.png"))

    # Right: the data. Then the key goes bad under the page: the next poll signs it out and
    # everything it showed is gone.
    page.get_by_label("Admin key").fill(clinic.admin_key)
    page.get_by_role("button", name="Sign in").click()
    expect(group(page, "starting_soon")).to_contain_text("Pat Smith")
    assert page.evaluate(f"sessionStorage.getItem('{KEY}')") == clinic.admin_key
    assert clinic.admin_key not in page.url
    cookies = page.context.cookies()
    assert cookies == []
    page.evaluate(f"sessionStorage.setItem('{KEY}', '{wrong}')")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#view-today")).to_be_hidden()
    assert "Pat Smith" not in page.content()

    # A stale wrong key in a fresh load never shows data either.
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert "Pat Smith" not in page.content()
    # Only the refused requests themselves were logged.
    assert all("403" in error for error in watched.errors), watched.errors
    page.context.close()


def test_readable_at_phone_width(browser: Browser, clinic: Clinic, artifacts: Path) -> None:
    clinic.book("a-wait", "doc", "pat")
    clinic.initiate("a-wait", "pat")
    clinic.open_room("a-wait", 60_000)
    clinic.arrive("a-wait", "s-pat", "pat", 60_000)
    watched = open_console(browser, clinic, PHONE)
    page = watched.page
    sign_in_with_keyboard(page, clinic.admin_key)
    expect(group(page, "waiting")).to_contain_text("Pat Smith")
    # Nothing wider than the screen: no sideways scrolling of the page itself.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # The group is said in words and a symbol, not by colour alone.
    expect(group(page, "waiting").locator(".badge").first).to_contain_text("Waiting")
    page.screenshot(path=str(artifacts / "console-phone.png"), full_page=True)
    assert watched.errors == []
    page.context.close()
