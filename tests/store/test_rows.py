"""The records use cases return hold exactly their table's columns, under the same names."""

from __future__ import annotations

import dataclasses

import peewee
import pytest

from service.store import rows
from service.store.models import (
    Appointment,
    OccupantSession,
    ProsodyHost,
    User,
    VideoCall,
    WebhookMessage,
)

PAIRS: list[tuple[type[object], type[peewee.Model]]] = [
    (rows.UserRecord, User),
    (rows.AppointmentRecord, Appointment),
    (rows.CallRecord, VideoCall),
    (rows.SessionRecord, OccupantSession),
    (rows.HostRecord, ProsodyHost),
    (rows.MessageRecord, WebhookMessage),
]


@pytest.mark.parametrize("record,model", PAIRS, ids=lambda c: c.__name__)
def test_a_record_has_its_tables_columns(record: type[object], model: type[peewee.Model]) -> None:
    names = [f.name for f in dataclasses.fields(record)]  # type: ignore[arg-type]
    assert names == [f.name for f in model._meta.sorted_fields]


def test_record_of_copies_a_row_into_a_frozen_value() -> None:
    row = ProsodyHost(
        host="meet", boot_id="b", last_heard=5, interval_s=60, silent=False, updated_at=6
    )
    copy = rows.record_of(rows.HostRecord, row)
    assert copy == rows.HostRecord("meet", "b", 5, 60, False, 6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.host = "other"  # type: ignore[misc]
