"""The sweep: what changes with time alone, for calls no event moves any more.

Calls Prosody tracks are derived again as of now (grace-period completion, NO_SHOW, stale
sessions, silent hosts; service.tracking's derivation), calls it never reported become
NO_SHOW by what their clients said, and old snapshots and delivered webhook messages are
deleted. `run_forever` runs it every SWEEP_INTERVAL inside the service; `videocalls sweep`
runs it once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
import anyio.to_thread

from service import metrics, tracking
from service.clock import now_ms
from service.config import Settings
from service.domain.model import CallStatus, missing_party
from service.store import db, hosts, operations, uow, video_calls
from service.store import event_log as event_store
from service.store import outbox as outbox_store
from service.transitions import record_transition
from service.webhooks import outbox

log = logging.getLogger("service.sweeper")

# Advisory lock key for the sweeper: one replica at a time sweeps (PostgreSQL).
SWEEPER_LOCK_KEY = 7_305_002
# Snapshots older than this are deleted by the sweeper: far beyond any call's window.
SNAPSHOT_RETENTION_MS = 30 * 86_400_000


@dataclass(frozen=True)
class SweepResult:
    ran: bool
    derived: int
    no_shows: int
    pruned: int


def sweep(settings: Settings, at: int | None = None) -> SweepResult:
    """Grace-period completion, NO_SHOW and stale sessions, for every open call.

    On PostgreSQL only the replica holding the advisory lock sweeps; the others return at
    once. Calls are handled a few per short transaction (`tracking.apply_in_steps`).
    """
    now = at if at is not None else now_ms()

    with uow.read():
        if not db.try_advisory_lock(SWEEPER_LOCK_KEY):
            return SweepResult(ran=False, derived=0, no_shows=0, pruned=0)
        try:
            tracking.note_silent_hosts(now)
            open_calls = event_store.open_tracked_calls()
            tracking.apply_in_steps(settings, open_calls, cause="sweeper", at=now)
            derived = len(open_calls)
            no_shows = _untracked_no_shows(settings, now)
            with uow.write():
                _settle_provisional(settings, now)
                pruned = event_store.prune_snapshots(now - SNAPSHOT_RETENTION_MS)
                pruned += outbox_store.prune(now - outbox.RETENTION_MS)
                operations.record_sweep(now, derived, no_shows)
            return SweepResult(ran=True, derived=derived, no_shows=no_shows, pruned=pruned)
        finally:
            db.advisory_unlock(SWEEPER_LOCK_KEY)


def _settle_provisional(settings: Settings, now: int) -> None:
    """Provisional calls become final once every host has been heard past their decision, or
    the correction horizon has passed (rules.provisional_since)."""
    heard = hosts.heard_until()
    through = now - settings.correction_horizon * 1000
    video_calls.settle_provisional(through if heard is None else max(heard, through))


def _untracked_no_shows(settings: Settings, now: int) -> int:
    """Calls without any Prosody event: NO_SHOW by the client reports they did get."""
    deadline = now - settings.no_show_grace * 1000
    marked = 0
    for call in video_calls.scheduled_calls_ended_before(deadline):
        missing = missing_party(
            doctor_came=call.doctor_joined_at is not None,
            patient_came=call.patient_joined_at is not None,
        ).value
        with uow.write():
            if video_calls.transition_call(
                call.id, [CallStatus.SCHEDULED], CallStatus.NO_SHOW, now, missing=missing
            ):
                marked += 1
                record_transition(
                    call,
                    CallStatus.SCHEDULED,
                    CallStatus.NO_SHOW,
                    tracking.SWEEPER,
                    now,
                    "sweeper",
                    missing=missing,
                )
    return marked


async def run_forever(settings: Settings) -> None:
    """Sweep every SWEEP_INTERVAL seconds; a failed sweep is logged and retried next time."""
    while True:
        await anyio.sleep(settings.sweep_interval)
        try:
            result = await anyio.to_thread.run_sync(sweep, settings)
        except Exception:
            log.exception("sweep failed")
            metrics.sweep_finished("failed")
            continue
        metrics.sweep_finished("ran" if result.ran else "skipped")
        if result.ran and (result.derived or result.no_shows):
            log.info(
                "sweep",
                extra={"fields": {"derived": result.derived, "no_shows": result.no_shows}},
            )
