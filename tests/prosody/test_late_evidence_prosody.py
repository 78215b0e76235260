"""A real Prosody (13 and 0.12) and the service's own app: the service is down across the
appointment's end while doctor and patient are in the room; the sweeper, running meanwhile,
settles a NO_SHOW; when the service is back, the module's spool is replayed and the call is
corrected to the consultation that took place (issue 30).

Prosody posts to the harness's receiver port; while "down" nothing listens there (connection
refused, the module spools); once "up" every request is handed, headers and body unchanged, to
the service's app (its receiver checks the signature and stores the event) and the service's
answer is Prosody's answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from harness.clock import real_now_ms
from harness.env import base_env
from harness.prosody import StackFactory, wait_until
from service import sweeper
from service.app import create_app
from service.config import load_settings
from service.domain.rules import whole_seconds
from service.store import uow
from service.store.models import Appointment, AuditEvent, ProsodyEvent, VideoCall
from tests.api.conftest import Api
from tests.clock import FrozenClock, appointment_around

pytestmark = pytest.mark.prosody

APPOINTMENT = "late1"
ROOM = f"appointment_{APPOINTMENT}"
DOC = "doctor123"
PAT = "patient456"
MINUTE = 60_000
# The deadline falls this long after the test starts: doctor and patient are in the room across
# it, and the test waits seconds, not minutes.
DEADLINE_IN_MS = 12_000


@pytest.fixture
def service(database_url: str, clock: FrozenClock) -> Iterator[Any]:
    """A factory: the service's app for Prosody's secret, its appointment ended at the last
    whole minute and NO_SHOW_GRACE chosen so the deadline is DEADLINE_IN_MS from now."""
    clients: list[TestClient] = []

    def make(secret: str) -> Api:
        end = clock.ms - clock.ms % MINUTE
        grace_s = (clock.ms + DEADLINE_IN_MS - end) // 1000
        env = base_env(
            DATABASE_URL=database_url,
            PRESENCE_SOURCE="server",
            PROSODY_EVENTS_SECRET=secret,
            NO_SHOW_GRACE=str(grace_s),
            SWEEP_INTERVAL="0",
        )
        settings = load_settings(env)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        api = Api(client, settings, clock)
        for uid in (DOC, PAT):
            api.put_user(uid)
        # `after_ms` just under a minute back: the end is the last whole minute, `end`.
        api.put_appointment(
            APPOINTMENT,
            doctorUid=DOC,
            patientUid=PAT,
            **appointment_around(clock.ms, zone="UTC", before_ms=20 * MINUTE, after_ms=1 - MINUTE),
        )
        assert uow.run(lambda: Appointment.get_by_id(APPOINTMENT).ends_at) == end
        assert api.initiate(DOC, APPOINTMENT).status_code == 200
        return api

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_the_replayed_spool_corrects_a_no_show_to_the_consultation(
    make_stack: StackFactory, service: Any
) -> None:
    stack = make_stack(receiver_up=False)
    api: Api = service(stack.receiver.secret)
    deadline = uow.run(lambda: Appointment.get_by_id(APPOINTMENT).ends_at) + (
        api.settings.no_show_grace * 1000
    )
    doctor = stack.client("doc", DOC)
    doctor.join(ROOM, "Doctor")
    patient = stack.client("pat", PAT)
    patient.join(ROOM, "Patient")
    # The service is down; the appointment's deadline passes with both in the room.
    wait_until(lambda: real_now_ms() > deadline + 2_000, DEADLINE_IN_MS / 1000 + 10, "deadline")
    patient.leave(ROOM)
    doctor.leave(ROOM)
    # started, created, two joins, two lefts, destroyed: all in the module's spool.
    wait_until(lambda: stack.prosody.spooled() >= 7, 10, "the spool")
    # Meanwhile the sweeper saw nothing: a NO_SHOW.
    api.clock.set(real_now_ms())
    assert sweeper.sweep(api.settings, at=api.clock.ms).ran
    assert status() == ("NO_SHOW", "NO_SHOW")

    # The service is back: each delivery goes to its receiver, and its answer back.
    def forward(headers: dict[str, str], body: bytes) -> int:
        response = api.client.post("/api/prosody/events", content=body, headers=headers)
        return int(response.status_code)

    stack.receiver.handle = forward  # type: ignore[method-assign]
    stack.receiver.start()
    wait_until(lambda: stack.prosody.spooled() == 0, 20, "the spool replayed")
    assert uow.run(lambda: ProsodyEvent.select().count()) >= 7

    assert status() == ("COMPLETED", "COMPLETED")
    record = api.client.get(f"/api/video-calls/{APPOINTMENT}", headers=api.auth(DOC)).json()
    call = record["videoCall"]
    assert record["presence"]["missing"] is None
    # Together from the patient's join to the first departure (the patient's), which came
    # after the deadline: the measured consultation, not a no-show.
    sessions = {x["role"]: x for x in record["presence"]["sessions"]}
    started, ended = (ms(sessions["patient"]["joinedAt"]), ms(sessions["patient"]["leftAt"]))
    assert ms(sessions["doctor"]["joinedAt"]) < started < deadline < ended
    assert (ms(call["startedAt"]), ms(call["endedAt"])) == (started, ended)
    assert call["duration"] == whole_seconds(ended - started)
    assert call["settled"] == "final"
    corrections = audits("call.corrected")
    assert [(c["from"], c["to"]) for c in corrections] == [("NO_SHOW", "SCHEDULED")]


def status() -> tuple[str, str]:
    return uow.run(
        lambda: (
            VideoCall.get(VideoCall.room_name == ROOM).status,
            Appointment.get_by_id(APPOINTMENT).status,
        )
    )


def audits(action: str) -> list[dict[str, Any]]:
    rows = uow.run(lambda: list(AuditEvent.select().where(AuditEvent.action == action)))
    return [json.loads(row.detail) for row in rows]


def ms(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp() * 1000)
