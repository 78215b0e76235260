"""A crashed or silent Prosody: the outage is not billed, the sweeper completes the calls of a
silent host, operators see the host go silent and come back (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from harness.eventstream import HOST, Stream
from service import sweeper
from service.store import uow
from service.store.models import AuditEvent, VideoCall
from tests.api.conftest import Api
from tests.api.test_openapi import conforms
from tests.api.test_prosody_events import ROOM, details, iso, post

INTERVAL_S = 60
HOSTS = "/api/admin/prosody-hosts"


def both_join_and_are_listed(api: Api, stream: Stream, interval_s: int | None) -> int:
    """The issue's scenario up to the crash: both join at t0, snapshots at +60 s and +120 s
    list them (each posted when it happens). Returns t0."""
    t0 = api.clock.ms
    assert post(api, stream.created(ROOM, "m1", t0)).status_code == 204
    assert post(api, stream.joined(ROOM, "m1", "s-doc", "doc", t0)).status_code == 204
    assert post(api, stream.joined(ROOM, "m1", "s-pat", "pat", t0)).status_code == 204
    occupants = [
        {"session": "s-doc", "user_id": "doc", "joined_at": t0},
        {"session": "s-pat", "user_id": "pat", "joined_at": t0},
    ]
    for offset in (60_000, 120_000):
        api.clock.set(t0 + offset)
        listing = [{"room": stream.room(ROOM, "m1"), "occupants": occupants}]
        event = stream.snapshot(t0 + offset, listing, interval_s)
        assert post(api, event).status_code == 204
    return t0


def status() -> str:
    return uow.run(lambda: VideoCall.get(VideoCall.room_name == ROOM).status)


def audits(action: str) -> list[dict[str, Any]]:
    rows = uow.run(lambda: list(AuditEvent.select().where(AuditEvent.action == action)))
    return [json.loads(row.detail) for row in rows]


@pytest.mark.parametrize("interval_s", [INTERVAL_S, None], ids=["interval", "no-interval"])
def test_an_hour_long_outage_is_not_billed(call: Api, interval_s: int | None) -> None:
    t0 = both_join_and_are_listed(call, Stream(), interval_s)
    # Prosody dies; it comes back an hour later with a new boot id.
    restart_at = t0 + 3_600_000
    call.clock.set(restart_at + 1_000)
    assert post(call, Stream().started(restart_at)).status_code == 204
    body = details(call)
    record = body["videoCall"]
    assert record["status"] == "COMPLETED"
    assert 119 <= record["duration"] <= 181
    assert record["endedAt"] == iso(t0 + 120_001)
    presence = body["presence"]
    assert presence["durationUncertain"] is True
    # With an interval announced, the hour without a word is silence before the restart.
    reason = "host_silent" if interval_s else "prosody_restart"
    assert [(s["endReason"], s["leftAt"], s["leftAtLatest"]) for s in presence["sessions"]] == [
        (reason, iso(t0 + 120_001), iso(restart_at))
    ] * 2
    repairs = audits("presence.repaired")
    assert {(r["reason"], r["at"], r["latest"]) for r in repairs} == {
        (reason, t0 + 120_001, restart_at)
    }


def test_a_silent_host_is_completed_by_the_sweeper_then_the_restart_changes_nothing(
    call: Api, caplog: pytest.LogCaptureFixture
) -> None:
    t0 = both_join_and_are_listed(call, Stream(boot_id="b_old"), INTERVAL_S)
    last = t0 + 120_000
    silent_at = last + 3 * INTERVAL_S * 1000
    # Not yet three intervals unheard: the call goes on.
    sweeper.sweep(call.settings, at=silent_at - 1)
    assert status() == "IN_PROGRESS"
    assert audits("prosody_host.silent") == []
    hosts = conforms(call.client.get(HOSTS, headers=call.admin()), HOSTS, "get", 200)
    assert hosts["hosts"][0]["silent"] is False
    # The next sweep after three intervals completes it, at the last moment known present.
    with caplog.at_level(logging.WARNING, logger="service.tracking"):
        call.clock.set(silent_at + call.settings.sweep_interval * 1000)
        sweeper.sweep(call.settings, at=call.clock.ms)
    assert status() == "COMPLETED"
    body = details(call)
    assert body["videoCall"]["duration"] == 120
    assert body["videoCall"]["endedAt"] == iso(last + 1)
    assert {(s["endReason"], s["leftAtLatest"]) for s in body["presence"]["sessions"]} == {
        ("host_silent", None)
    }
    assert body["presence"]["durationUncertain"] is True
    assert [r.getMessage() for r in caplog.records] == ["prosody host silent"]
    assert audits("prosody_host.silent") == [
        {"host": HOST, "boot_id": "b_old", "last_heard": last, "interval_s": INTERVAL_S}
    ]
    hosts = conforms(call.client.get(HOSTS, headers=call.admin()), HOSTS, "get", 200)
    assert hosts["hosts"] == [
        {
            "host": HOST,
            "bootId": "b_old",
            "lastHeardAt": iso(last),
            "snapshotInterval": INTERVAL_S,
            "silent": True,
        }
    ]
    # Said once: later sweeps do not repeat it.
    sweeper.sweep(call.settings, at=call.clock.ms + 60_000)
    assert len(audits("prosody_host.silent")) == 1
    # An hour later the host is back with a new boot: the record stays what it was.
    restart_at = t0 + 3_600_000
    call.clock.set(restart_at + 1_000)
    with caplog.at_level(logging.WARNING, logger="service.tracking"):
        assert post(call, Stream(boot_id="b_new").started(restart_at)).status_code == 204
    assert caplog.records[-1].getMessage() == "prosody host back"
    assert audits("prosody_host.back") == [
        {"host": HOST, "boot_id": "b_new", "last_heard": last, "heard": restart_at}
    ]
    after = details(call)
    assert after["videoCall"] == body["videoCall"]
    hosts = conforms(call.client.get(HOSTS, headers=call.admin()), HOSTS, "get", 200)
    # The new boot has announced no interval yet: it cannot be silent.
    assert hosts["hosts"][0] | {"lastHeardAt": None} == {
        "host": HOST,
        "bootId": "b_new",
        "lastHeardAt": None,
        "snapshotInterval": None,
        "silent": False,
    }


def test_a_late_delivery_from_the_same_boot_keeps_the_session_open(call: Api) -> None:
    stream = Stream()
    t0 = both_join_and_are_listed(call, stream, INTERVAL_S)
    occupants = [
        {"session": "s-doc", "user_id": "doc", "joined_at": t0},
        {"session": "s-pat", "user_id": "pat", "joined_at": t0},
    ]
    listing = [{"room": stream.room(ROOM, "m1"), "occupants": occupants}]
    # The receiver was unreachable for five minutes; the spool delivers the same boot's next
    # snapshot before the sweeper ran: nothing was ever closed.
    call.clock.set(t0 + 420_000)
    assert post(call, stream.snapshot(t0 + 400_000, listing, INTERVAL_S)).status_code == 204
    body = details(call)
    assert body["videoCall"]["status"] == "IN_PROGRESS"
    # (Stored as False, not as the True that every boolean once became on the way in.)
    assert [(s["leftAt"], s["repaired"]) for s in body["presence"]["sessions"]] == [
        (None, False),
        (None, False),
    ]
    assert body["presence"]["durationUncertain"] is False


def test_prosody_hosts_needs_the_admin_key(call: Api) -> None:
    conforms(call.client.get(HOSTS), HOSTS, "get", 401)
    empty = conforms(call.client.get(HOSTS, headers=call.admin()), HOSTS, "get", 200)
    assert empty == {"message": "Prosody hosts retrieved successfully", "count": 0, "hosts": []}


def test_the_newest_event_decides_the_hosts_boot(call: Api) -> None:
    old, new = Stream(boot_id="b_old"), Stream(boot_id="b_new")
    t0 = call.clock.ms
    assert post(call, new.started(t0)).status_code == 204
    assert post(call, new.snapshot(t0 + 1_000, [], INTERVAL_S)).status_code == 204
    # The old boot's spool delivers late: it is heard, but it is not the current boot.
    assert post(call, old.snapshot(t0 - 5_000, [], 30)).status_code == 204
    hosts = conforms(call.client.get(HOSTS, headers=call.admin()), HOSTS, "get", 200)
    assert hosts["hosts"] == [
        {
            "host": HOST,
            "bootId": "b_new",
            "lastHeardAt": iso(t0 + 1_000),
            "snapshotInterval": INTERVAL_S,
            "silent": False,
        }
    ]
    call.clock.set(t0 + 1_000 + 3 * INTERVAL_S * 1000)
    hosts = conforms(call.client.get(HOSTS, headers=call.admin()), HOSTS, "get", 200)
    assert hosts["hosts"][0]["silent"] is True
