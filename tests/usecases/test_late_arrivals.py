"""The stored record, status included, is the derivation over every event stored so far, for
generated histories whose events arrive in any order and at any delay (before the deadline or
long after it: a spool replayed after an outage), with sweeps interleaved (issue 30).

Each step is compared with `derive_call` over the events sent, as of the last moment the
service applied anything (an ingest or a sweep that ran): a sweep on PostgreSQL may be
skipped while another test run holds the advisory lock, and then changes nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import calls, sweeper, tracking
from service.config import Settings
from service.domain.prosody import RoomEvent
from service.store.models import VideoCall
from tests.clock import FrozenClock, appointment_around
from tests.usecases.support import Prosody, appointment, derived_from, read

pytestmark = pytest.mark.usefixtures("seeded")

MINUTE = 60_000
U = 2 * MINUTE
# Delays between arrivals: at once, a moment, and long enough to cross the deadline (the
# appointment ends 30 minutes after its call starts; the deadline is 15 minutes later).
DELAYS = (0, 1_000, 10 * MINUTE, 40 * MINUTE, 2 * 60 * MINUTE)
_ids = itertools.count()


@dataclass(frozen=True)
class Stay:
    role: str  # "doc" or "pat" (their uids)
    joined: int  # grid steps after the call's start
    length: int | None  # grid steps; None: still there as far as the history goes


stays = st.lists(
    st.builds(
        Stay,
        st.sampled_from(["doc", "pat"]),
        st.integers(0, 24),
        st.one_of(st.none(), st.integers(1, 12)),
    ),
    max_size=4,
)


@dataclass(frozen=True)
class Arrival:
    delay: int
    sweep_after: bool


def events_of(prosody: Prosody, room: str, start: int, history: list[Stay]) -> list[RoomEvent]:
    out = [prosody.created(room, start)]
    for n, stay in enumerate(history):
        joined = start + 1_000 + stay.joined * U
        out.append(prosody.joined(room, f"s{n}", stay.role, joined))
        if stay.length is not None:
            out.append(prosody.left(room, f"s{n}", stay.role, joined + stay.length * U))
    return out


def record(call_id: str) -> tuple[Any, ...]:
    call = read(lambda: VideoCall.get_by_id(call_id))
    return (call.status, call.started_at, call.ended_at, call.duration, call.missing)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=stays, data=st.data())
def test_the_stored_record_is_the_derivation_whatever_arrives_late(
    settings: Settings, clock: FrozenClock, history: list[Stay], data: st.DataObject
) -> None:
    appointment_id = f"late{next(_ids)}"
    appointment(
        clock,
        appointment_id,
        **appointment_around(clock.ms, before_ms=MINUTE, after_ms=29 * MINUTE),
    )
    call = calls.initiate(settings, "doc", appointment_id).call
    start = clock.ms
    events = events_of(Prosody(), call.room_name, start, history)
    order = data.draw(st.permutations(events))
    arrivals = data.draw(
        st.lists(
            st.builds(Arrival, st.sampled_from(DELAYS), st.booleans()),
            min_size=len(order),
            max_size=len(order),
        )
    )
    sent: list[RoomEvent] = []
    applied = clock.ms
    for event, arrival in zip(order, arrivals, strict=True):
        # An event arrives after it occurred, and the clock never goes back.
        clock.set(max(clock.ms + arrival.delay, event.occurred_at + 1_000))
        tracking.ingest(settings, event, "contract")
        sent.append(event)
        applied = clock.ms
        assert record(call.id) == expected(settings, applied, call.id, sent)
        if arrival.sweep_after:
            clock.advance(MINUTE)
            if sweeper.sweep(settings, at=clock.ms).ran:
                applied = clock.ms
            assert record(call.id) == expected(settings, applied, call.id, sent)
    # Long after everything: the record a final sweep leaves is the derivation too.
    clock.advance(6 * 60 * MINUTE)
    if sweeper.sweep(settings, at=clock.ms).ran:
        applied = clock.ms
    assert record(call.id) == expected(settings, applied, call.id, sent)


def expected(settings: Settings, at: int, call_id: str, sent: list[RoomEvent]) -> tuple[Any, ...]:
    derived = derived_from(settings, at, call_id, sent)
    return (
        derived.status.value,
        derived.started_at,
        derived.ended_at,
        derived.duration,
        derived.missing.value if derived.missing else None,
    )
