"""Incremental derivation: one summary per call (service.domain.incremental). Calls start
without one and derive in full once, which writes it."""

import peewee


def up(migrator, db):  # type: ignore[no-untyped-def]
    class DerivationState(peewee.Model):
        call_id = peewee.CharField(max_length=40, primary_key=True)
        state = peewee.TextField()

        class Meta:
            database = db
            table_name = "derivation_states"

    db.create_tables([DerivationState])
