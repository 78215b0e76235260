"""The audit trail proves itself: any change, removal, insertion or reordering of an entry,
and removal of entries a checkpoint saw, fails verification; an untouched trail passes,
also when two replicas append at once. The database refuses UPDATE and DELETE itself."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import subprocess
import sys
from dataclasses import replace

import hypothesis
import peewee
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from service import audit
from service.config import Settings, load_webhook_settings
from service.domain import audit_chain
from service.store import audit_log, uow
from service.store.models import AuditEvent
from tests.conftest import repo_root
from tests.e2e.conftest import free_port
from tests.store.support import reset_for_tests, sql, sql_around_the_service
from tests.webhook_receiver import Receiver

PROPERTY = hypothesis.settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ACTIONS = ("call.created", "token.issued", "call.read", "user.upserted")


def signing_settings(settings: Settings) -> Settings:
    # A fresh key per test: no private key is ever stored in the repository.
    return replace(settings, audit_signing_key=os.urandom(32).hex())


def write_trail(n: int, start: int = 1_000) -> None:
    for i in range(n):
        with uow.write():
            audit_log.audit(
                f"user-{i % 3}",
                ACTIONS[i % len(ACTIONS)],
                start + i,
                f"call-{i % 4}",
                f"appt-{i % 5}",
                {"i": i},
                f"192.0.2.{i % 7}" if i % 2 else None,
            )


def rows() -> list[AuditEvent]:  # in chain order
    return list(AuditEvent.select().order_by(AuditEvent.seq))


def test_an_untouched_trail_verifies_with_its_checkpoints(
    database_url: str, settings: Settings
) -> None:
    signed = signing_settings(settings)
    uow.run(lambda: write_trail(5))
    first = audit.take_checkpoint(signed)
    assert first is not None and first.entries == 5
    assert audit.take_checkpoint(signed) is None  # nothing new: no second checkpoint
    uow.run(lambda: write_trail(3, start=2_000))
    assert audit.take_checkpoint(signed) is not None
    result = audit.verify(signed)
    assert result.ok, result.failure
    assert (result.entries, result.checkpoints, result.keys_pinned) == (8, 2, True)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'someone-else'",
        "DELETE FROM audit_events",
        "UPDATE audit_checkpoints SET entries = 0",
        "DELETE FROM audit_checkpoints",
    ],
)
def test_the_database_refuses_to_change_or_remove_entries(
    database_url: str, settings: Settings, statement: str
) -> None:
    uow.run(lambda: write_trail(2))
    assert audit.take_checkpoint(signing_settings(settings)) is not None
    with pytest.raises(peewee.DatabaseError, match="append-only"):
        sql(statement)
    assert [r.actor for r in uow.run(rows)] == ["user-0", "user-1"]
    assert audit.verify(settings).ok


def test_postgresql_refuses_truncate(postgres_database_url: str) -> None:
    uow.run(lambda: write_trail(1))
    for table in ("audit_events", "audit_checkpoints"):
        with pytest.raises(peewee.DatabaseError, match="append-only"):
            sql(f"TRUNCATE {table}")
    assert uow.run(lambda: AuditEvent.select().count()) == 1


@PROPERTY
@given(n=st.integers(1, 12), data=st.data())
def test_any_changed_entry_is_named(
    database_url: str, settings: Settings, n: int, data: st.DataObject
) -> None:
    uow.run(reset_for_tests)
    uow.run(lambda: write_trail(n))
    victim = data.draw(st.sampled_from(uow.run(rows)))
    column, value = data.draw(
        st.sampled_from(
            [
                ("actor", "someone-else"),
                ("action", "nothing.happened"),
                ("at", victim.at + 1),
                ("call_id", None if victim.call_id else "call-x"),
                ("detail", "{}"),
                ("appointment_id", "appt-other"),
                ("address", "203.0.113.9"),
            ]
        )
    )
    sql_around_the_service(f"UPDATE audit_events SET {column} = ? WHERE id = ?", (value, victim.id))  # noqa: S608
    result = audit.verify(settings)
    assert result.failure is not None and result.failure.entry_id == victim.id


@PROPERTY
@given(n=st.integers(2, 12), data=st.data())
def test_any_removed_inserted_or_reordered_entry_fails(
    database_url: str, settings: Settings, n: int, data: st.DataObject
) -> None:
    uow.run(reset_for_tests)
    uow.run(lambda: write_trail(n))
    trail = uow.run(rows)
    how = data.draw(st.sampled_from(["delete", "insert", "swap", "renumber"]))
    i = data.draw(st.integers(0, n - 2))
    a, b = trail[i], trail[i + 1]
    a_seq, a_hash = int(a.seq or 0), str(a.hash)
    if how == "delete":
        # Any entry but the last (removing the tail is the checkpoints' case below).
        sql_around_the_service("DELETE FROM audit_events WHERE id = ?", (a.id,))
    elif how == "swap":
        # The two entries trade places: each takes the other's position and links.
        for row, other in ((a, b), (b, a)):
            sql_around_the_service(
                "UPDATE audit_events SET seq = ?, prev_hash = ?, hash = ? WHERE id = ?",
                (-int(other.seq or 0), other.prev_hash, other.hash, row.id),
            )
        sql_around_the_service("UPDATE audit_events SET seq = -seq WHERE seq < 0")
    elif how == "renumber":
        # An entry squeezed in after `a`, well formed and linked to `a`; the ones after it
        # moved up by one, as a careful forger would.
        for later in reversed(trail[i + 1 :]):
            sql_around_the_service(
                "UPDATE audit_events SET seq = seq + 1 WHERE id = ?", (later.id,)
            )
        nonce = "00" * 16
        content = audit_chain.content_hash(nonce, a.at, "forger", "call.read", None, None, "{}")
        sql_around_the_service(
            "INSERT INTO audit_events (at, actor, action, detail, seq, nonce, content_hash, "
            "prev_hash, hash) VALUES (?, 'forger', 'call.read', '{}', ?, ?, ?, ?, ?)",
            (
                a.at,
                a_seq + 1,
                nonce,
                content,
                a_hash,
                audit_chain.link_hash(a_hash, a_seq + 1, content),
            ),
        )
    else:
        # A row written around the service, without a place in the chain.
        sql_around_the_service(
            "INSERT INTO audit_events (at, actor, action, detail) VALUES (1, 'x', 'y', '{}')"
        )
    result = audit.verify(settings)
    assert result.failure is not None, how


@PROPERTY
@given(n=st.integers(1, 10), extra=st.integers(0, 5), cut=st.integers(1, 15))
def test_truncation_before_the_last_checkpoint_fails(
    database_url: str, settings: Settings, n: int, extra: int, cut: int
) -> None:
    signed = signing_settings(settings)
    uow.run(reset_for_tests)
    uow.run(lambda: write_trail(n))
    point = audit.take_checkpoint(signed)
    assert point is not None
    uow.run(lambda: write_trail(extra, start=5_000))
    cut = min(cut, n + extra)
    sql_around_the_service("DELETE FROM audit_events WHERE seq > ?", (n + extra - cut,))
    # Whoever truncates the trail can remove the stored checkpoint too: the copy kept
    # outside (the log, the webhook) still catches it.
    sql_around_the_service("DELETE FROM audit_checkpoints")
    result = audit.verify(signed, [point])
    if cut > extra:
        assert result.failure is not None
        assert "removed" in result.failure.reason
    else:
        assert result.ok, result.failure


def test_a_checkpoint_signed_by_another_key_fails(database_url: str, settings: Settings) -> None:
    uow.run(lambda: write_trail(2))
    forged = audit.take_checkpoint(signing_settings(settings))
    assert forged is not None
    result = audit.verify(signing_settings(settings))
    assert result.failure is not None and "signature" in result.failure.reason


REPLICA = """
import sys, threading
from service.store import audit_log, db, uow
db.bind(db.make_database(sys.argv[1], 4))
def append(name):
    for i in range(int(sys.argv[2])):
        with uow.write():
            audit_log.audit(name, "call.read", 1_000 + i, "call-1", None, {"i": i})
threads = [threading.Thread(target=append, args=(f"{sys.argv[3]}-{k}",)) for k in range(2)]
for t in threads: t.start()
for t in threads: t.join()
"""


def test_two_replicas_appending_at_once_make_one_chain(
    database_url: str, settings: Settings
) -> None:
    """Two processes (two replicas, each with two writer threads) append at the same time."""
    per_thread = 30
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", REPLICA, database_url, str(per_thread), f"replica-{k}"],
            cwd=repo_root(),
        )
        for k in range(2)
    ]
    assert [p.wait(timeout=120) for p in replicas] == [0, 0]
    result = audit.verify(settings)
    assert result.ok, result.failure
    assert result.entries == 4 * per_thread
    actors = {row.actor for row in uow.run(rows)}
    assert actors == {f"replica-{k}-{t}" for k in range(2) for t in range(2)}


def test_a_checkpoint_is_published_to_the_webhook_and_the_log_and_verifies_from_there(
    database_url: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """What the clinic's receiver keeps is enough: after the stored checkpoints are gone and
    the newest entry removed, its copy still catches the removal."""
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    receiver = Receiver([secret], free_port())
    receiver.start()
    try:
        signed = replace(
            signing_settings(settings),
            webhooks=load_webhook_settings(
                {"WEBHOOK_URL": receiver.url, "WEBHOOK_SECRET": secret}, production=False
            ),
        )
        uow.run(lambda: write_trail(3))
        with caplog.at_level(logging.INFO, logger="service.audit"):
            point = audit.take_checkpoint(signed)
        assert point is not None
        (receipt,) = receiver.wait_for(lambda r: len(r) >= 1)
    finally:
        receiver.stop()
    assert receipt.type == audit.CHECKPOINT_TYPE
    logged = [r for r in caplog.records if r.getMessage() == "audit checkpoint"]
    assert [r.fields["checkpoint"] for r in logged] == [audit.checkpoint_json(point)]  # type: ignore[attr-defined]
    kept = audit.read_checkpoints([json.dumps(receipt.body)])
    assert kept == [point]
    sql_around_the_service("DELETE FROM audit_events WHERE seq = 3")
    sql_around_the_service("DELETE FROM audit_checkpoints")
    assert audit.verify(signed).ok  # the database alone cannot tell
    caught = audit.verify(signed, kept)
    assert caught.failure is not None and "removed after it was taken" in caught.failure.reason


def test_an_entry_commits_and_rolls_back_with_its_transaction(database_url: str) -> None:
    """Appends wait for the commit (uow.defer): a savepoint or transaction that rolls back
    takes its entries with it, and the ones that commit stay in order."""

    class Refused(Exception):
        pass

    def write() -> None:
        with uow.write():
            audit_log.audit("kept-1", "call.read", 1)
            with contextlib.suppress(Refused), uow.write():
                audit_log.audit("savepoint", "call.read", 2)
                raise Refused
            audit_log.audit("kept-2", "call.read", 3)
        with contextlib.suppress(Refused), uow.write():
            audit_log.audit("rolled-back", "call.read", 4)
            raise Refused

    uow.run(write)
    assert [(r.seq, r.actor) for r in uow.run(rows)] == [(1, "kept-1"), (2, "kept-2")]
