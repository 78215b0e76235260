"""Webhooks to the clinic's backend: the outbox and what each call's receiver has been told."""

import peewee


def up(migrator, db):  # type: ignore[no-untyped-def]
    class Base(peewee.Model):
        class Meta:
            database = db
            legacy_table_names = False

    class WebhookMessage(Base):
        id = peewee.CharField(max_length=40, primary_key=True)
        type = peewee.CharField(max_length=32)
        call_id = peewee.CharField(max_length=40, null=True)
        appointment_id = peewee.CharField(max_length=128, null=True)
        sequence = peewee.BigIntegerField(default=0)
        body = peewee.TextField()
        status = peewee.CharField(max_length=16)
        attempts = peewee.IntegerField(default=0)
        last_status = peewee.IntegerField(null=True)
        last_error = peewee.CharField(max_length=200, null=True)
        next_attempt_at = peewee.BigIntegerField()
        lease_owner = peewee.CharField(max_length=64, null=True)
        created_at = peewee.BigIntegerField()
        updated_at = peewee.BigIntegerField()
        delivered_at = peewee.BigIntegerField(null=True)

        class Meta:
            table_name = "webhook_messages"
            indexes = (
                (("status", "next_attempt_at"), False),
                (("call_id", "sequence"), False),
                (("status", "created_at", "id"), False),
            )

    class WebhookCallState(Base):
        call_id = peewee.CharField(max_length=40, primary_key=True)
        sequence = peewee.BigIntegerField(default=0)
        state = peewee.TextField(default="{}")

        class Meta:
            table_name = "webhook_call_state"

    db.create_tables([WebhookMessage, WebhookCallState])
