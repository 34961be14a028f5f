"""The local pair as a cluster that fails over: a synchronous standby, promotion, and the DSNs
a gateway uses to follow the primary wherever it is.

What CloudNativePG does in Kubernetes, done by hand for `make run` and the tests:

- ``synchronous(pair)`` names the standby (``application_name`` ``ssogw_replica`` in its
  ``primary_conninfo``) in the primary's ``synchronous_standby_names``, so payments committed
  with ``remote_apply`` are applied on it before they are answered (``app.db.sync_commit``);
  ``synchronous(pair, on=False)`` takes it out again (commits stop waiting for it).
- ``promote_standby(pair)`` promotes the standby (``pg_ctl promote``) and clears its own
  ``synchronous_standby_names``: it has no standby of its own yet.
- ``fleet_dsns(record)``: the primary as one multi-host DSN with
  ``target_session_attrs=read-write`` (whichever node is read-write is the primary), and every
  node as a replica DSN (the router reads only the ones in recovery).

The pair's record (``pair.json``) keeps naming the original roles: after a promotion the node
in ``replica/`` is the primary. Rebuild the old primary as a standby (or the pair, with
``ssogw db down`` and a fresh ``.data/``) before using the pair as a pair again.
"""

from __future__ import annotations

import time
from pathlib import Path

from app.db.local_pair import (
    SERVICE_ROLE,
    SUPERUSER,
    LocalPair,
    PairRecord,
    read_record,
)
from app.db.pg_binaries import run_as

STANDBY_NAME = "ssogw_replica"


def _record(pair: LocalPair) -> PairRecord:
    record = read_record(pair.root)
    if record is None:
        raise RuntimeError(f"no local pair under {pair.root}; run `ssogw db up` first")
    return record


def _sql(pair: LocalPair, port: int, sql: str) -> str:
    """Run ``sql`` as the servers' superuser on the server at ``port``; its output."""
    record = _record(pair)
    psql = Path(record.bin_dir) / "psql"
    out = run_as(
        pair.user,
        [str(psql) if psql.exists() else "psql", "-h", "127.0.0.1", "-p", str(port),
         "-U", SUPERUSER, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
        home=pair.root,
    )  # fmt: skip
    return out.stdout.strip()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def synchronous(pair: LocalPair, *, on: bool = True, timeout_s: float = 30.0) -> None:
    """Make the standby synchronous (``on``) or not; returns once the primary says so."""
    record = _record(pair)
    if on:
        conninfo = _sql(pair, record.replica_port, "SHOW primary_conninfo")
        if f"application_name={STANDBY_NAME}" not in conninfo:
            named = _literal(f"{conninfo} application_name={STANDBY_NAME}".strip())
            _sql(pair, record.replica_port, f"ALTER SYSTEM SET primary_conninfo = {named}")
            _sql(pair, record.replica_port, "SELECT pg_reload_conf()")
        names = _literal(f"FIRST 1 ({STANDBY_NAME})")
        _sql(pair, record.primary_port, f"ALTER SYSTEM SET synchronous_standby_names = {names}")
    else:
        _sql(pair, record.primary_port, "ALTER SYSTEM RESET synchronous_standby_names")
    _sql(pair, record.primary_port, "SELECT pg_reload_conf()")
    want = "sync" if on else "async"
    query = (
        "SELECT count(*) FROM pg_stat_replication"
        f" WHERE state = 'streaming' AND sync_state = '{want}'"
    )
    deadline = time.monotonic() + timeout_s
    while _sql(pair, record.primary_port, query) in ("", "0"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the standby did not become {want} in time")
        time.sleep(0.1)


def promote_standby(pair: LocalPair) -> None:
    """Promote the standby to be the primary (it waits for no standby of its own)."""
    record = _record(pair)
    pg_ctl = str(Path(record.bin_dir) / "pg_ctl")
    run_as(pair.user, [pg_ctl, "promote", "-D", str(pair.replica_dir), "-w", "-t", "60"],
           home=pair.root)  # fmt: skip
    _sql(pair, record.replica_port, "ALTER SYSTEM RESET synchronous_standby_names")
    _sql(pair, record.replica_port, "SELECT pg_reload_conf()")


def fleet_dsns(record: PairRecord, *, role: str = SERVICE_ROLE) -> tuple[str, list[str]]:
    """The gateway's DSNs for a pair that may fail over: the primary as a multi-host DSN that
    finds the read-write node, and each node as a replica DSN."""
    hosts = f"127.0.0.1:{record.primary_port},127.0.0.1:{record.replica_port}"
    primary = f"postgresql://{role}@{hosts}/{record.database}?target_session_attrs=read-write"
    replicas = [record.dsn(port, role=role) for port in (record.primary_port, record.replica_port)]
    return primary, replicas
