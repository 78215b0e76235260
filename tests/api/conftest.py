"""API fixtures: the app over Starlette's TestClient, seeded through the admin API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from service.app import create_app
from service.auth.dev import mint_dev_token
from service.config import Settings
from tests.clock import FrozenClock, appointment_around


@dataclass
class Api:
    client: TestClient
    settings: Settings
    clock: FrozenClock

    def auth(self, uid: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_dev_token(self.settings, uid)}"}

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_api_key}"}

    def put_user(self, uid: str, **fields: Any) -> None:
        body = {"firstName": uid.title(), "lastName": "Test", "email": f"{uid}@example.test"}
        body.update(fields)
        response = self.client.put(f"/api/admin/users/{uid}", json=body, headers=self.admin())
        assert response.status_code == 200, response.text

    def put_appointment(self, appointment_id: str, **fields: Any) -> None:
        """By default CONFIRMED and under way: from two hours ago to two hours ahead, Berlin."""
        body = {
            "doctorUid": "doc",
            "patientUid": "pat",
            **appointment_around(self.clock.ms),
            "status": "CONFIRMED",
        }
        body.update(fields)
        response = self.client.put(
            f"/api/admin/appointments/{appointment_id}", json=body, headers=self.admin()
        )
        assert response.status_code == 200, response.text

    def initiate(self, uid: str, appointment_id: str) -> Any:
        return self.client.post(
            "/api/video-calls/initiate",
            json={"appointmentId": appointment_id},
            headers=self.auth(uid),
        )

    def report(self, uid: str, ref: str, action: str) -> Any:
        return self.client.patch(
            f"/api/video-calls/{ref}/status", json={"action": action}, headers=self.auth(uid)
        )


@pytest.fixture
def api(settings: Settings, clock: FrozenClock) -> Iterator[Api]:
    # A loopback peer (TestClient's default is the name "testclient"): the event_sync
    # receiver admits only addresses in EVENT_SYNC_ALLOWED_NETWORKS.
    with TestClient(
        create_app(settings), raise_server_exceptions=False, client=("127.0.0.1", 50000)
    ) as client:
        yield Api(client, settings, clock)


@pytest.fixture
def seeded(api: Api) -> Api:
    """A doctor, a patient, an outsider, and appointment `appt1` (CONFIRMED)."""
    for uid in ("doc", "pat", "outsider"):
        api.put_user(uid)
    api.put_appointment("appt1")
    return api


@pytest.fixture
def call(seeded: Api) -> Api:
    """`seeded`, with the call of `appt1` initiated by the doctor."""
    assert seeded.initiate("doc", "appt1").status_code == 200
    return seeded


Factory = Callable[..., Api]
