"""The audit trail's checkpoints and verification, as operators read them over HTTP."""

from __future__ import annotations

import os
from dataclasses import replace

from starlette.testclient import TestClient

from service import audit
from service.app import create_app
from service.config import Settings
from service.domain import audit_chain
from tests.api.conftest import Api
from tests.store.support import sql_around_the_service


def test_checkpoints_are_listed_and_signed_and_verify_names_a_changed_entry(
    api: Api, settings: Settings
) -> None:
    signed = replace(settings, audit_signing_key=os.urandom(32).hex())
    api.put_user("doc")
    api.put_user("pat")
    point = audit.take_checkpoint(signed)
    assert point is not None and point.entries == 2
    with TestClient(create_app(signed), client=("127.0.0.1", 50000)) as client:
        listed = client.get("/api/admin/audit/checkpoints", headers=api.admin()).json()
        assert listed["count"] == 1
        (item,) = listed["checkpoints"]
        assert (item["entries"], item["headHash"]) == (2, point.head_hash)
        # What a client checks by itself: the signature over the documented message.
        message = audit_chain.checkpoint_message(item["entries"], item["headHash"], item["atMs"])
        assert audit_chain.signature_valid(item["publicKey"], item["signature"], message)
        assert item["publicKey"] == audit_chain.public_key(signed.audit_signing_key)

        verified = client.get("/api/admin/audit/verify", headers=api.admin()).json()
        assert verified["verified"] and verified["keysPinned"]
        # The two upserts and the list of checkpoints just read (reads are audited).
        assert (verified["entries"], verified["checkpoints"], verified["failure"]) == (3, 1, None)

        sql_around_the_service("UPDATE audit_events SET actor = 'someone-else'")
        failed = client.get("/api/admin/audit/verify", headers=api.admin()).json()
        assert not failed["verified"]
        assert failed["failure"]["position"] == 1
        assert failed["failure"]["reason"] == "its content was changed"


def test_the_audit_endpoints_need_the_admin_key(api: Api) -> None:
    for path in ("/api/admin/audit/checkpoints", "/api/admin/audit/verify"):
        assert api.client.get(path).status_code == 401
