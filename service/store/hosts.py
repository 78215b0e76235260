"""What the service last heard from each Prosody host: for operators, and so that a host going
silent and coming back is logged and audited once each. Call records never read this table."""

from __future__ import annotations

import peewee

from service.domain.prosody import Event, Snapshot
from service.domain.sessions import silent_from
from service.store.compiled import Compiled
from service.store.db import current, is_postgres
from service.store.models import ProsodyHost


def _locked(host: str) -> peewee.ModelSelect[ProsodyHost]:
    query = ProsodyHost.select().where(ProsodyHost.host == host)
    return query.for_update() if is_postgres(current()) else query


_LOCKED = Compiled(_locked, "h")
_UPDATE = Compiled(
    lambda host, boot, heard, interval, at: ProsodyHost.update(
        boot_id=boot, last_heard=heard, interval_s=interval, silent=False, updated_at=at
    ).where(ProsodyHost.host == host),
    "h",
    "b",
    -1,
    -2,
    -3,
)


def note(event: Event, now_ms: int) -> ProsodyHost | None:
    """Record that `event`'s host spoke. Returns the row as it was if it had been logged as
    silent (the host is back), else None.

    The newest event decides the boot; a new boot has announced no interval until its first
    snapshot (snapshots may be off in it).
    """
    interval = event.interval_s if isinstance(event, Snapshot) else None
    row = _LOCKED.first(ProsodyHost, event.host)
    if row is None:
        ProsodyHost.insert(
            host=event.host,
            boot_id=event.boot_id,
            last_heard=event.occurred_at,
            interval_s=interval,
            silent=False,
            updated_at=now_ms,
        ).on_conflict_ignore().execute()
        row = _LOCKED.first(ProsodyHost, event.host)
        assert row is not None
        if row.last_heard == event.occurred_at and row.boot_id == event.boot_id:
            return None
    boot, heard, announced = row.boot_id, row.last_heard, row.interval_s
    if event.occurred_at >= row.last_heard:
        if event.boot_id != row.boot_id:
            announced = None
        boot, heard = event.boot_id, event.occurred_at
        announced = interval if interval is not None else announced
    elif event.boot_id == row.boot_id and interval is not None and announced is None:
        announced = interval
    if (boot, heard, announced, False) != (row.boot_id, row.last_heard, row.interval_s, row.silent):
        _UPDATE.execute(event.host, boot, heard, announced, now_ms)
    return row if row.silent else None


def is_silent(row: ProsodyHost, now_ms: int) -> bool:
    if row.interval_s is None:
        return False
    return now_ms >= silent_from(row.last_heard, row.interval_s * 1000)


def mark_silent(now_ms: int) -> list[ProsodyHost]:
    """Flag the hosts that fell silent since the last look; returns them (to log and audit).

    Conditional on `last_heard`, so an event received meanwhile wins over the flag."""
    found = []
    candidates = ProsodyHost.select().where(
        ~ProsodyHost.silent & ProsodyHost.interval_s.is_null(False)
    )
    for row in candidates:
        if not is_silent(row, now_ms):
            continue
        updated = (
            ProsodyHost.update(silent=True, updated_at=now_ms)
            .where(
                (ProsodyHost.host == row.host)
                & ~ProsodyHost.silent
                & (ProsodyHost.last_heard == row.last_heard)
            )
            .execute()
        )
        if updated:
            found.append(row)
    return found


def all_hosts() -> list[ProsodyHost]:
    return list(ProsodyHost.select().order_by(ProsodyHost.host))


def heard_until() -> int | None:
    """The earliest of the hosts' last-heard times: every host has been heard up to it (None:
    no host heard yet). A decision before it is no longer waiting for any host's events."""
    value: int | None = ProsodyHost.select(peewee.fn.MIN(ProsodyHost.last_heard)).scalar()
    return value
