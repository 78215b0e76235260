"""service.store.hosts: what was last heard from each Prosody host, and its silence."""

from __future__ import annotations

import pytest

from service.domain.sessions import silent_from
from service.store import hosts
from service.store.models import ProsodyHost
from tests.clock import FrozenClock
from tests.usecases.support import ROOM, Prosody

pytestmark = pytest.mark.usefixtures("conn")


def stored(host: str) -> tuple[str | None, int, int | None, bool]:
    row = ProsodyHost.get_by_id(host)
    return row.boot_id, row.last_heard, row.interval_s, row.silent


def test_note_records_the_newest_event(clock: FrozenClock) -> None:
    t = clock.ms
    prosody = Prosody()
    assert hosts.note(prosody.created(ROOM, t - 4_000), t) is None
    assert stored(prosody.host) == ("boot-1", t - 4_000, None, False)
    assert ProsodyHost.get_by_id(prosody.host).updated_at == t
    assert hosts.note(prosody.snapshot(t - 3_000, interval_s=60), t) is None
    assert stored(prosody.host) == ("boot-1", t - 3_000, 60, False)
    hosts.note(prosody.created(ROOM, t - 3_500), t)
    assert stored(prosody.host) == ("boot-1", t - 3_000, 60, False)
    hosts.note(Prosody(boot="boot-2").started(t - 2_000), t)
    assert stored(prosody.host) == ("boot-2", t - 2_000, None, False)
    hosts.note(prosody.snapshot(t - 2_500, interval_s=60), t)
    assert stored(prosody.host) == ("boot-2", t - 2_000, None, False)


def test_a_late_snapshot_of_the_same_boot_announces_its_interval(clock: FrozenClock) -> None:
    t = clock.ms
    prosody = Prosody()
    hosts.note(prosody.created(ROOM, t - 1_000), t)
    hosts.note(prosody.snapshot(t - 2_000, interval_s=30), t)
    assert stored(prosody.host) == ("boot-1", t - 1_000, 30, False)


def test_silence_is_flagged_once_and_a_return_reported(clock: FrozenClock) -> None:
    heard = clock.ms
    prosody = Prosody()
    quiet = Prosody(host="quiet.example.test")
    hosts.note(prosody.snapshot(heard, interval_s=60), clock.ms)
    hosts.note(quiet.created(ROOM, heard), clock.ms)
    row = ProsodyHost.get_by_id(prosody.host)
    at = silent_from(heard, 60_000)
    assert not hosts.is_silent(row, at - 1)
    assert hosts.is_silent(row, at)
    assert not hosts.is_silent(ProsodyHost.get_by_id(quiet.host), at + 365 * 86_400_000)
    assert hosts.mark_silent(at - 1) == []
    assert [r.host for r in hosts.mark_silent(at)] == [prosody.host]
    assert hosts.mark_silent(at + 1) == []
    assert stored(prosody.host)[3] is True
    was = hosts.note(prosody.created(ROOM, at + 5), at + 5)
    assert was is not None
    assert (was.host, was.last_heard, was.silent) == (prosody.host, heard, True)
    assert stored(prosody.host) == ("boot-1", at + 5, 60, False)
    assert hosts.note(prosody.created(ROOM, at + 6), at + 6) is None
    assert [h.host for h in hosts.all_hosts()] == sorted([prosody.host, quiet.host])
