"""Session-wide fixtures: one real PostgreSQL pair, settings pointing at it, the wired app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.settings import Settings
from app.store.local_pair import LocalPair, PairRecord
from tests.support.pair import session_pair


@pytest.fixture(scope="session")
def pg_pair() -> Iterator[tuple[LocalPair, PairRecord]]:
    """The session's primary and replica (started on first use, stopped at the end)."""
    with session_pair() as started:
        yield started


@pytest.fixture(scope="session")
def settings(pg_pair: tuple[LocalPair, PairRecord], tmp_path_factory: pytest.TempPathFactory
             ) -> Settings:
    _, record = pg_pair
    return Settings(
        data_dir=Path(tmp_path_factory.mktemp("data")),
        primary_dsn=record.primary_dsn,
        replica_dsns=[record.replica_dsn],
        replica_probe_interval_s=0.1,
        replica_max_lag_s=2.0,
        primary_pool_min=1,
        replica_pool_min=1,
    )
