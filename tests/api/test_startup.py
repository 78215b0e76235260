"""What a worker sets up for itself when it starts serving."""

from __future__ import annotations

import gc
import sys

from starlette.testclient import TestClient

from service.app import GIL_SWITCH_INTERVAL_S, create_app
from service.config import Settings


def test_a_worker_hides_its_long_lived_objects_from_the_collector(settings: Settings) -> None:
    """A full collection walks every tracked object, pausing all threads; what exists once the
    worker starts lives as long as it does, so it is frozen out of those walks."""
    gc.unfreeze()
    switch = sys.getswitchinterval()
    assert gc.get_freeze_count() == 0
    try:
        with TestClient(create_app(settings)):
            assert gc.get_freeze_count() > 10_000
            assert sys.getswitchinterval() == GIL_SWITCH_INTERVAL_S
    finally:
        gc.unfreeze()
        sys.setswitchinterval(switch)
