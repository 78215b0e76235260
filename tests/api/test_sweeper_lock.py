"""Only one replica sweeps at a time: the PostgreSQL advisory lock."""

from __future__ import annotations

import psycopg2
import pytest

from harness.env import base_env
from service import sweeper
from service.config import load_settings


@pytest.mark.postgres
def test_a_second_replica_skips_the_sweep_while_one_holds_the_lock(
    postgres_database_url: str,
) -> None:
    settings = load_settings(base_env(DATABASE_URL=postgres_database_url))
    # Another replica's connection holds the sweeper's lock.
    other = psycopg2.connect(postgres_database_url.split("?")[0])
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (sweeper.SWEEPER_LOCK_KEY,))
        assert sweeper.sweep(settings).ran is False
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (sweeper.SWEEPER_LOCK_KEY,))
        assert sweeper.sweep(settings).ran is True
        # The lock is released after a sweep: the other replica can take it.
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (sweeper.SWEEPER_LOCK_KEY,))
            assert cursor.fetchone() == (True,)
    finally:
        other.close()
