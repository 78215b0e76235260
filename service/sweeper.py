"""The sweeper's timer inside the service (the same sweep runs once with `videocalls sweep`)."""

from __future__ import annotations

import logging

import anyio
import anyio.to_thread

from service import metrics, tracking
from service.config import Settings

log = logging.getLogger("service.sweeper")


async def run_forever(settings: Settings) -> None:
    """Sweep every SWEEP_INTERVAL seconds; a failed sweep is logged and retried next time."""
    while True:
        await anyio.sleep(settings.sweep_interval)
        try:
            result = await anyio.to_thread.run_sync(tracking.sweep, settings)
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
