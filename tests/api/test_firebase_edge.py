"""Firebase at the HTTP edge (issue 33, item 3), through firebase-admin's real verification
(only Google's certificate endpoint stands in, tests/firebase_tokens.py): anonymous sign-ins
and foreign tenants are a 401, and a stalled certificate fetch never holds the database's
threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
import requests
from starlette.testclient import TestClient

from service.api.common import AUTH_THREADS
from service.app import create_app
from service.auth.firebase import EMULATOR_HOST_ENV, FirebaseAuthenticator
from service.config import AuthMode
from tests import firebase_tokens
from tests.api.conftest import Api


@pytest.fixture
def firebase_api(call: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.delenv(EMULATOR_HOST_ENV, raising=False)
    firebase_tokens.install_cert_endpoint(monkeypatch)
    firebase = replace(
        call.settings, auth_mode=AuthMode.FIREBASE, firebase_project_id=firebase_tokens.PROJECT
    )
    app = create_app(call.settings, FirebaseAuthenticator(firebase))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, call.settings, call.clock)


def initiate(api: Api, token: str) -> Any:
    return api.client.post(
        "/api/video-calls/initiate",
        json={"appointmentId": "appt1"},
        headers={"Authorization": f"Bearer {token}"},
    )


def signed_in(provider: str, **firebase: Any) -> str:
    claims = firebase_tokens.claims(
        "doc", firebase={"identities": {}, "sign_in_provider": provider, **firebase}
    )
    return firebase_tokens.id_token(claims)


def test_anonymous_and_foreign_tenant_tokens_are_refused(firebase_api: Api) -> None:
    for token in (signed_in("anonymous"), signed_in("password", tenant="elsewhere-9z")):
        response = initiate(firebase_api, token)
        assert (response.status_code, response.json()["error"]) == (401, "invalid_token")
    # The same doctor, signed in with a password in the project itself: served.
    assert initiate(firebase_api, signed_in("password")).status_code == 200


def test_a_stalled_certificate_fetch_holds_no_database_thread(
    firebase_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    fetching = threading.Semaphore(0)
    endpoint = firebase_tokens.CertEndpoint()

    # Installed as a plain function, so bound: the adapter comes first.
    def stalled(
        adapter: Any, request: requests.PreparedRequest, *_: Any, **__: Any
    ) -> requests.Response:
        fetching.release()
        release.wait(30)  # bounded: the test releases it long before
        return endpoint.send(request)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", stalled)
    stuck = AUTH_THREADS + firebase_api.settings.db_pool_size
    token = signed_in("password")
    with ThreadPoolExecutor(stuck) as pool:
        waiting = [pool.submit(initiate, firebase_api, token) for _ in range(stuck)]
        try:
            # Every verification thread is waiting on Google.
            for _ in range(AUTH_THREADS):
                assert fetching.acquire(timeout=30)
            # The database's threads are free: the admin API (no Firebase) answers at once.
            started = time.monotonic()
            firebase_api.put_user("late-comer")
            assert time.monotonic() - started < 5
        finally:
            release.set()
        assert {f.result(timeout=60).status_code for f in waiting} == {200}
