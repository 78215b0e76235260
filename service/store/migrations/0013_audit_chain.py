"""Audit entries say where a request came from (`address`); the audit trail becomes a hash
chain (service/domain/audit_chain.py) with signed checkpoints, and the database refuses to
change or remove its rows (store/audit_guard.py).

Entries stored before it are chained here in id order, the order they were written in.
"""

import secrets

import peewee

from service.domain import audit_chain
from service.store import audit_guard


def up(migrator, db):  # type: ignore[no-untyped-def]
    migrator.migrate(
        migrator.add_column("audit_events", "address", peewee.CharField(max_length=64, null=True)),
        migrator.add_column("audit_events", "seq", peewee.BigIntegerField(null=True)),
        migrator.add_column("audit_events", "nonce", peewee.CharField(max_length=32, null=True)),
        migrator.add_column(
            "audit_events", "content_hash", peewee.CharField(max_length=64, null=True)
        ),
        migrator.add_column(
            "audit_events", "prev_hash", peewee.CharField(max_length=64, null=True)
        ),
        migrator.add_column("audit_events", "hash", peewee.CharField(max_length=64, null=True)),
    )
    head, seq, last_id = audit_chain.GENESIS, 0, 0
    while True:
        rows = db.execute_sql(
            "SELECT id, at, actor, action, call_id, appointment_id, detail FROM audit_events "
            "WHERE id > %s ORDER BY id LIMIT 1000".replace("%s", db.param),
            (last_id,),
        ).fetchall()
        if not rows:
            break
        for id_, at, actor, action, call_id, appointment_id, detail in rows:
            seq += 1
            nonce = secrets.token_hex(16)
            content = audit_chain.content_hash(
                nonce, at, actor, action, call_id, appointment_id, detail
            )
            link = audit_chain.link_hash(head, seq, content)
            db.execute_sql(
                "UPDATE audit_events SET seq = %s, nonce = %s, content_hash = %s, "
                "prev_hash = %s, hash = %s WHERE id = %s".replace("%s", db.param),
                (seq, nonce, content, head, link, id_),
            )
            head, last_id = link, id_
    migrator.migrate(migrator.add_index("audit_events", ("seq",), True))

    class AuditCheckpoint(peewee.Model):
        id = peewee.BigAutoField()
        at = peewee.BigIntegerField()
        entries = peewee.BigIntegerField()
        head_hash = peewee.CharField(max_length=64)
        public_key = peewee.CharField(max_length=64)
        signature = peewee.CharField(max_length=128)

        class Meta:
            database = db
            table_name = "audit_checkpoints"

    db.create_tables([AuditCheckpoint])
    audit_guard.install(db)
