"""What one worker of ``ssogw serve --workers N`` is given: an instance of its own, and its
share of what the settings allow the server.

- **Its own instance id**, so its own audit spool: worker 0 keeps ``SSOGW_INSTANCE_ID`` (a
  server that had one worker before finds its spool where it left it), worker *k* is
  ``<id>-w<k>``. Two processes never share a spool file.
- **Its share of the pools**: ``SSOGW_PRIMARY_POOL_MAX`` and ``SSOGW_REPLICA_POOL_MAX`` (and
  the minimums) are the server's, divided among the workers (rounded down, at least one
  each), so N workers open no more connections than the settings allowed one. Each worker
  also keeps its own audit (2), admission (2) and change-listener (1) connections to the
  primary: ``docs/operations.md``, "Scaling out".
- **Its share of the connection caps**: ``SSOGW_HTTP_MAX_CONNECTIONS`` and
  ``SSOGW_HTTP_MAX_CONNECTIONS_PER_ADDRESS`` are the server's too. The kernel spreads an
  address's connections over the workers by a hash, so it meets its cap at about the
  configured count (a little sooner when the hash is uneven).

The credential checks' failure budgets (``SSOGW_CREDENTIAL_FAILURES_PER_*``) are not shared
out: they hold for the fleet in PostgreSQL (``app.admission.shared_failures``), so a guesser
whose connections land on every worker meets the configured budget once. Each worker's own
copy, which holds alone while the database is away, is the whole budget.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from app.settings import Settings


def worker_instance_id(instance_id: str, index: int) -> str:
    """The instance id of worker ``index`` of a server whose id is ``instance_id``."""
    return instance_id if index == 0 else f"{instance_id}-w{index}"


def _share(total: int, workers: int, *, least: int) -> int:
    return max(least, total // workers)


def worker_settings(settings: Settings, *, index: int, workers: int) -> Settings:
    """The settings worker ``index`` of ``workers`` runs with."""
    if workers == 1:
        return settings
    primary_max = _share(settings.primary_pool_max, workers, least=1)
    replica_max = _share(settings.replica_pool_max, workers, least=1)
    return settings.model_copy(
        update={
            "instance_id": worker_instance_id(settings.instance_id, index),
            "primary_pool_max": primary_max,
            "primary_pool_min": min(
                _share(settings.primary_pool_min, workers, least=0), primary_max
            ),
            "replica_pool_max": replica_max,
            "replica_pool_min": min(
                _share(settings.replica_pool_min, workers, least=0), replica_max
            ),
            "http_max_connections": _share(settings.http_max_connections, workers, least=1),
            "http_max_connections_per_address": _share(
                settings.http_max_connections_per_address, workers, least=1
            ),
        }
    )


def former_workers(spool_dir: Path, instance_id: str, *, workers: int) -> Iterable[str]:
    """The instance ids of workers a server with more workers had, found in ``spool_dir``:
    worker ``workers`` and beyond (their spools are handed to worker 0)."""
    pattern = re.compile(re.escape(instance_id) + r"-w([0-9]+)")
    if not spool_dir.is_dir():
        return []
    return sorted(
        path.name
        for path in spool_dir.iterdir()
        if (found := pattern.fullmatch(path.name)) and int(found.group(1)) >= workers
    )
