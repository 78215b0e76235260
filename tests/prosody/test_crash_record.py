"""A real Prosody killed with kill -9 mid-call and started again 30 s later on the same data
folder: the events it sent, parsed and derived by the service's own code, bill the time
before the crash up to the last snapshot plus the time after the restart, never the gap."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from harness.prosody import StackFactory, wait_until
from service.domain.model import CallStatus, EndReason
from service.domain.presence import Params, derive_call
from service.domain.prosody import ProsodyStarted, RoomEvent, Snapshot
from service.receiver.parse import parse_v1

pytestmark = pytest.mark.prosody

ROOM = "appointment_crash"
DOC = "doctor123"
PAT = "patient456"
# Short, so the test waits seconds, not minutes; the rules scale with it.
INTERVAL_S = 2
OUTAGE_S = 30
GRACE_MS = 120_000


def listing_both(event: dict[str, Any], boot: str) -> bool:
    if event["type"] != "rooms.snapshot" or event["source"]["boot_id"] != boot:
        return False
    users = {
        o["user_id"] for r in event["rooms"] if r["room"]["name"] == ROOM for o in r["occupants"]
    }
    return {DOC, PAT} <= users


def test_kill_9_then_restart_bills_no_outage(make_stack: StackFactory) -> None:
    stack = make_stack({"video_call_events_snapshot_interval": INTERVAL_S})
    receiver, prosody = stack.receiver, stack.prosody
    doctor = stack.client("doc", DOC)
    doctor.join(ROOM, "Doctor")
    patient = stack.client("pat", PAT)
    patient.join(ROOM, "Patient")
    first_boot = receiver.wait_for(1)[0]["source"]["boot_id"]
    wait_until(
        lambda: sum(listing_both(e, first_boot) for e in receiver.events()) >= 2,
        4 * INTERVAL_S + 5,
        "two snapshots listing both",
    )
    prosody.kill()
    crashed_at = time.time() * 1000
    for client in (doctor, patient):
        client.disconnect()
    time.sleep(OUTAGE_S)
    prosody.start()  # same folder: the spool and its index survive

    doctor = stack.client("doc", DOC)
    doctor.join(ROOM, "Doctor")
    patient = stack.client("pat", PAT)
    patient.join(ROOM, "Patient")
    time.sleep(INTERVAL_S + 1)
    patient.leave(ROOM)
    doctor.leave(ROOM)
    wait_until(
        lambda: any(e["type"] == "room.destroyed" for e in receiver.events()[-3:]),
        20,
        "the room's destruction after the restart",
    )
    raw = receiver.events()
    assert receiver.errors == []

    # The service's parser and derivation, on exactly what Prosody sent.
    parsed = [parse_v1(json.dumps(event).encode()) for event in raw]
    room_events = [e for e in parsed if isinstance(e, RoomEvent)]
    snapshots = [e for e in parsed if isinstance(e, Snapshot)]
    restarts = [e for e in parsed if isinstance(e, ProsodyStarted)]
    assert len({e.boot_id for e in restarts}) == 2
    assert all(s.interval_s == INTERVAL_S for s in snapshots)
    last = max(e.occurred_at for e in parsed)
    record = derive_call(
        room_events,
        snapshots,
        restarts,
        Params(
            room_name=ROOM,
            doctor_uid=DOC,
            patient_uid=PAT,
            appointment_end_ms=None,
            call_end_grace_ms=GRACE_MS,
            no_show_grace_ms=15 * 60_000,
            max_call_ms=4 * 3600_000,
        ),
        now_ms=last + GRACE_MS + 1,
    )
    assert record.status is CallStatus.COMPLETED
    assert record.duration is not None

    def joined(user: str, boot: str) -> int:
        return next(
            e.occurred_at
            for e in room_events
            if e.type.value == "occupant.joined"
            and e.occupant
            and e.occupant.user_id == user
            and e.boot_id == boot
        )

    second_boot = next(e.boot_id for e in restarts if e.boot_id != first_boot)
    together_from = max(joined(DOC, first_boot), joined(PAT, first_boot))
    last_listed = max(s.occurred_at for s in snapshots if listing_both(_raw(raw, s.id), first_boot))
    rejoined = max(joined(DOC, second_boot), joined(PAT, second_boot))
    first_left = min(
        e.occurred_at
        for e in room_events
        if e.type.value == "occupant.left" and e.boot_id == second_boot
    )
    after = (first_left - rejoined) / 1000
    before = (last_listed - together_from) / 1000
    # Before the crash: up to the last snapshot, which is within one interval of the crash.
    assert crashed_at - last_listed < INTERVAL_S * 1000 + 1000
    assert abs(record.duration - (before + after)) <= 1, (record.duration, before, after)
    # The gap is not billed: even the crash moment itself bounds the first part.
    assert record.duration <= (crashed_at - together_from) / 1000 + after + 1
    assert record.duration < (rejoined - together_from) / 1000
    # The sessions of the dead boot end at their last moment known present; with an interval
    # of 2 s, 30 s without a word was silence before the restart.
    repaired = {r.session: r for r in record.repairs}
    assert len(repaired) == 2
    for repair in repaired.values():
        assert repair.at == last_listed + 1
        assert repair.reason in (EndReason.HOST_SILENT, EndReason.PROSODY_RESTART)
        assert repair.latest is not None and repair.latest >= crashed_at
    assert record.duration_uncertain


def _raw(raw: list[dict[str, Any]], event_id: str) -> dict[str, Any]:
    return next(e for e in raw if e["id"] == event_id)
