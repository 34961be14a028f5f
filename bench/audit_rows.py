"""`audit lookups` over a large audit trail: generate N records server-side, then time lookups.

The records go into a PostgreSQL server of their own under ``bench/out/audit`` (one server, no
standby, migrated with the gateway's own migrations, so ``audit_log`` is the real partitioned
table with its real indexes). Why not the bench pair: 100,000,000 records take about 40 GB,
and a streaming standby would keep a second copy (and the WAL to make it); this machine's disk
has room for one. With no standby, ``wal_level = minimal`` lets each monthly partition be
TRUNCATEd and filled in one transaction without WAL, which halves the writing.

Generation is plain SQL (``INSERT … SELECT … FROM generate_series``), one monthly partition
per statement, two partitions at a time (this machine has 2 cores). Records spread over the
last 24 months and this one, in time order within each month; IDs are the seeded persons of
``national_id_for(index, seed=1)`` over 13,000,000 persons: 80% of records fall uniformly on
everyone (about 6 per person), 20% on a frequent 1% (about 150 each: repeated inquiries,
monthly payers who check often). Operations, outcomes, names, addresses and details are
plausible; hashes are 32 bytes with ``prev_hash`` linking to the previous record's ``hash``,
but they are not the real chain (verify would report them; lookups do not read them).

Then: lookups through ``AuditQueries.lookups`` (the query ``ssogw audit lookups`` runs, newest
first, 100 records a page), for ``--lookups`` random persons (typical) and frequent persons
(hot), p50/p99/max; and ``ssogw audit lookups --national-id X --json`` itself, wall time
(process start-up included).

    .venv/bin/python -m bench.audit_rows [--rows 100000000] [--regenerate] [--lookups 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from app.audit.queries import AuditQueries
from app.db.local_pair import SERVICE_ROLE, free_port
from app.db.migrator import migrate
from app.db.pg_binaries import OsUser, find_pg_bin, run_as, server_user
from app.insured.demo_data import national_id_for

ROOT = Path(__file__).resolve().parent.parent
PERSONS = 13_000_000
SEED = 1
MONTHS_BACK = 24  # and the current month
HOT_SHARE = 0.2  # of records, on
HOT_PERSONS = 130_000  # 1% of persons

# national_id_for(index, seed=1) in SQL (app/insured/demo_data.py and app/domain/national_id.py),
# in integer arithmetic: the first digit d0, the 11-digit body b, the check digit.
NID_FUNCTION = """
CREATE OR REPLACE FUNCTION bench_nid(idx bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT d0::text || lpad(b::text, 11, '0') || ((11 - (d0 * 13
           + (b / 10000000000) * 12 + (b / 1000000000 % 10) * 11 + (b / 100000000 % 10) * 10
           + (b / 10000000 % 10) * 9 + (b / 1000000 % 10) * 8 + (b / 100000 % 10) * 7
           + (b / 10000 % 10) * 6 + (b / 1000 % 10) * 5 + (b / 100 % 10) * 4
           + (b / 10 % 10) * 3 + (b % 10) * 2) % 11) % 10)::text
  FROM (SELECT (idx + 1) % 8 + 1 AS d0,
               (idx * 7368787397 + 1000003 + 12345) % 100000000000 AS b) AS h
$$;
"""

# One month of records into a new table: $1 first seq, $2 count, $3 month start, $4 seconds.
FILL_MONTH = f"""
INSERT INTO TARGET (seq, at, principal_kind, principal_id, principal_name, operator,
    terminal, source_ip, protocol, operation, national_id, name_returned, outcome, request_id,
    detail, prev_hash, hash)
SELECT s, $3::timestamptz + make_interval(secs => (s - $1)::float8 * $4 / $2),
       'partner', 1 + (r % 5)::int, partner_names[1 + r % 5],
       'OP-' || lpad((r % 9973)::text, 4, '0'), 'T-' || lpad((r % 97)::text, 2, '0'),
       '10.0.0.0'::inet + (r % 16777216), CASE WHEN r % 10 = 0 THEN 'rest' ELSE 'soap' END,
       op, bench_nid(person),
       CASE WHEN op = 'InquireContribution' THEN names[1 + r % 6] END,
       CASE WHEN r % 100 < 97 THEN 'ok' WHEN r % 100 < 99 THEN 'client.already_paid'
            ELSE 'client.amount_mismatch' END,
       lpad(to_hex(r), 16, '0') || lpad(to_hex(s), 16, '0'),
       CASE WHEN op = 'InquireContribution' THEN '{{"servedBy": "replica"}}'::jsonb
            WHEN op = 'ConfirmPayment' THEN ('{{"amountSatang": 10000, "receiptNo": "R'
                 || lpad(s::text, 12, '0') || '"}}')::jsonb
            ELSE NULL END,
       decode(lpad(to_hex(s - 1), 64, '0'), 'hex'), decode(lpad(to_hex(s), 64, '0'), 'hex')
FROM (
  SELECT s, r,
         CASE WHEN r % 1000 < {int(HOT_SHARE * 1000)} THEN (r >> 10) % {HOT_PERSONS} * 97
              ELSE (r >> 10) % {PERSONS} END AS person,
         CASE WHEN r % 100 < 60 THEN 'InquireContribution'
              WHEN r % 100 < 95 THEN 'ConfirmPayment'
              WHEN r % 100 < 98 THEN 'GetPaymentStatus'
              ELSE 'CancelPayment' END AS op
  FROM (SELECT s, (hashint8(s)::bigint & 2147483647) * 65537 + (hashint8(s + 7)::bigint & 65535)
               AS r
        FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) AS s) AS g
) AS x,
(SELECT ARRAY['partner-1', 'partner-2', 'partner-3', 'partner-4', 'partner-5'] AS partner_names,
        ARRAY['นาย สมชาย ใจดี', 'นาง สมหญิง ศรีสุข', 'นางสาว มาลี ทองดี', 'นาย วิชัย บุญมา',
              'นาง สุนีย์ แก้วมณี', 'นาย กิตติ รุ่งเรือง'] AS names) AS c
"""

# Built beside the partition, indexed, then swapped in: the indexes are built by sorting once
# instead of being maintained row by row, and with wal_level = minimal neither the rows nor the
# indexes of a table created in the same transaction are written to WAL.
BUILD = """
CREATE TABLE {new} (LIKE audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
"""
INDEX = """
ALTER TABLE {new} ADD CONSTRAINT {new}_range CHECK (at >= '{begin}' AND at < '{end}');
ALTER TABLE {new} ADD CONSTRAINT {new}_pkey PRIMARY KEY (at, seq);
CREATE INDEX {new}_national_id_at_seq_idx ON {new} (national_id, at, seq)
    WHERE national_id IS NOT NULL;
CREATE INDEX {new}_seq_idx ON {new} (seq);
"""
SWAP = """
ALTER TABLE audit_log DETACH PARTITION {part};
DROP TABLE {part};
ALTER TABLE {new} RENAME TO {part};
ALTER TABLE {part} RENAME CONSTRAINT {new}_pkey TO {part}_pkey;
ALTER INDEX {new}_national_id_at_seq_idx RENAME TO {part}_national_id_at_seq_idx;
ALTER INDEX {new}_seq_idx RENAME TO {part}_seq_idx;
ALTER TABLE audit_log ATTACH PARTITION {part} FOR VALUES FROM ('{begin}') TO ('{end}');
ALTER TABLE {part} DROP CONSTRAINT {new}_range;
"""


def say_default(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class AuditStore:
    """One PostgreSQL server under ``root`` for the audit trail (no standby)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.data = self.root / "pgdata"
        self.user: OsUser = server_user()
        self.record = self.root / "server.json"

    def _run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_as(self.user, args, home=self.root, check=check)

    @property
    def dsn(self) -> str:
        port = json.loads(self.record.read_text())["port"]
        return f"postgresql://postgres@127.0.0.1:{port}/ssogw"

    def up(self) -> str:
        """Initialise if needed, start if stopped; the DSN."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.user.chown(self.root)
        if not (self.data / "PG_VERSION").exists() or not self.record.exists():
            bin_dir, _ = find_pg_bin()
            if self.data.exists():
                shutil.rmtree(self.data)
            self.data.mkdir(mode=0o700)
            self.user.chown(self.data)
            self._run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ]
            )
            settings = {
                "listen_addresses": "'127.0.0.1'",
                "unix_socket_directories": "''",
                "max_connections": "50",
                "timezone": "'UTC'",
                # As the bench pair, for the lookups (app/db/local_pair.py):
                "shared_buffers": "256MB",
                "fsync": "on",
                "checkpoint_timeout": "15min",
                # Bulk load without a standby: no WAL for partitions truncated and filled in one
                # transaction, fewer checkpoints.
                "wal_level": "minimal",
                "max_wal_senders": "0",
                "max_wal_size": "8GB",
                "maintenance_work_mem": "512MB",
                "work_mem": "64MB",
                "log_min_messages": "warning",
            }
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write("\n# ssogw bench audit store\n")
                conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
            self.record.write_text(json.dumps({"bin_dir": str(bin_dir), "port": free_port()}))
            self._start()
            psql = str(bin_dir / "psql")
            port = json.loads(self.record.read_text())["port"]
            self._run(
                [
                    psql,
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                    "CREATE DATABASE ssogw",
                ]
            )
        else:
            self._start()
        return self.dsn

    def _start(self) -> None:
        meta = json.loads(self.record.read_text())
        pg_ctl = str(Path(meta["bin_dir"]) / "pg_ctl")
        if self._run([pg_ctl, "status", "-D", str(self.data)], check=False).returncode == 0:
            return
        self._run(
            [
                pg_ctl,
                "start",
                "-D",
                str(self.data),
                "-l",
                str(self.root / "server.log"),
                "-o",
                f"-p {meta['port']}",
                "-w",
                "-t",
                "120",
            ]
        )

    def down(self) -> None:
        if not self.record.exists():
            return
        meta = json.loads(self.record.read_text())
        pg_ctl = str(Path(meta["bin_dir"]) / "pg_ctl")
        if self._run([pg_ctl, "status", "-D", str(self.data)], check=False).returncode == 0:
            self._run([pg_ctl, "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "120"])


def month_starts(today: date) -> list[date]:
    first = date(today.year, today.month, 1)
    months = []
    for back in range(MONTHS_BACK, -1, -1):
        y, m = divmod(first.year * 12 + first.month - 1 - back, 12)
        months.append(date(y, m + 1, 1))
    return months


async def generate(dsn: str, rows: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Fill the audit trail with ``rows`` records over the last 25 months; timings."""
    conn = await asyncpg.connect(dsn)
    try:
        # The migrator grants the service role its privileges, so the role must exist (this
        # store is the superuser's own; nothing here connects as the service).
        await conn.execute(
            f"DO $$ BEGIN CREATE ROLE {SERVICE_ROLE} LOGIN;"
            " EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        await migrate(conn, service_role=SERVICE_ROLE)
        await conn.execute(NID_FUNCTION)
        months = month_starts(datetime.now(UTC).date())
        now = datetime.now(UTC)
        spans = []
        for start in months:
            begin = datetime(start.year, start.month, 1, tzinfo=UTC)
            y, m = divmod(start.year * 12 + start.month, 12)
            following = date(y, m + 1, 1)
            stop = min(now, datetime(following.year, following.month, 1, tzinfo=UTC))
            bounds = (start.isoformat(), following.isoformat())  # as the migration's partitions
            spans.append((f"audit_log_{start:%Y%m}", begin, (stop - begin).total_seconds(), bounds))
        total_s = sum(span[2] for span in spans)
        plan: list[tuple[str, int, int, datetime, float, tuple[str, str]]] = []
        seq = 1
        for k, (name, begin, seconds, bounds) in enumerate(spans):
            count = round(rows * seconds / total_s) if k < len(spans) - 1 else rows - (seq - 1)
            plan.append((name, seq, count, begin, seconds, bounds))
            seq += count
    finally:
        await conn.close()

    started = time.monotonic()
    queue: asyncio.Queue[tuple[str, int, int, datetime, float, tuple[str, str]]] = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)
    done_rows = 0

    async def worker() -> None:
        nonlocal done_rows
        conn = await asyncpg.connect(dsn, command_timeout=None)
        try:
            await conn.execute("SET synchronous_commit = off; SET maintenance_work_mem = '512MB'")
            while not queue.empty():
                part, first, count, begin, seconds, (lower, upper) = queue.get_nowait()
                new_table = f"{part}_new"
                names = {"new": new_table, "part": part, "begin": lower, "end": upper}
                await conn.execute(f"DROP TABLE IF EXISTS {new_table}")
                async with conn.transaction():
                    await conn.execute(BUILD.format(**names))
                    await conn.execute(
                        FILL_MONTH.replace("TARGET", new_table), first, count, begin, seconds
                    )
                    await conn.execute(INDEX.format(**names))
                async with conn.transaction():
                    await conn.execute(SWAP.format(**names))
                done_rows += count
                say(
                    f"  {part}: {count:,} records ({done_rows:,} of {rows:,},"
                    f" {time.monotonic() - started:.0f} s)"
                )
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(2)))
    filled = time.monotonic() - started
    conn = await asyncpg.connect(dsn, command_timeout=None)
    try:
        await conn.execute(
            "UPDATE audit_chain SET last_seq = $1, last_hash = sha256(int8send($1))", rows
        )
        await conn.execute("ANALYZE audit_log")
        await conn.execute("CHECKPOINT")
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()
    total = time.monotonic() - started
    return {
        "rows": rows,
        "fill_seconds": round(filled, 1),
        "generate_seconds": round(total, 1),
        "bytes": size,
        "months": len(plan),
    }


async def time_lookups(dsn: str, count: int) -> dict[str, Any]:
    """p50/p99/max of the lookups query for random typical and frequent persons."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        queries = AuditQueries(pool_provider=lambda: pool)
        rng = random.Random(9)

        async def one(nid: str) -> tuple[float, int]:
            started = time.perf_counter()
            rows = await queries.lookups(
                national_id=nid, from_=None, to=None, limit=101, after=None
            )
            return (time.perf_counter() - started) * 1000, len(rows)

        await one(national_id_for(1, seed=SEED))  # connection and plan
        typical = [
            await one(national_id_for(rng.randrange(PERSONS), seed=SEED)) for _ in range(count)
        ]
        hot = [
            await one(national_id_for(rng.randrange(HOT_PERSONS) * 97, seed=SEED))
            for _ in range(max(20, count // 4))
        ]
        plan = "\n".join(
            row[0]
            for row in await pool.fetch(
                "EXPLAIN (ANALYZE, BUFFERS) " + _explainable(), national_id_for(13 * 97, seed=SEED)
            )
        )
    finally:
        await pool.close()

    def stats(samples: list[tuple[float, int]]) -> dict[str, float]:
        ms = sorted(s for s, _ in samples)
        return {
            "p50_ms": round(ms[len(ms) // 2], 3),
            "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
            "max_ms": round(ms[-1], 3),
            "mean_rows": round(sum(n for _, n in samples) / len(samples), 1),
        }

    return {
        "typical": stats(typical),
        "hot": stats(hot),
        "lookups": len(typical) + len(hot),
        "plan": plan,
    }


def _explainable() -> str:
    from app.audit.queries import LOOKUPS, UNLINKED_SEQ

    return (
        LOOKUPS.replace("$7", str(UNLINKED_SEQ))
        .replace("$2", "'-infinity'")
        .replace("$3", "'infinity'")
        .replace("$4", "'infinity'")
        .replace("$5", "9223372036854775807")
        .replace("$6", "101")
    )


def cli_lookup(dsn: str) -> float:
    """Wall time of ``ssogw audit lookups --national-id X --json`` (process start included)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSOGW_")}
    env["SSOGW_PRIMARY_DSN"] = dsn
    env["SSOGW_REPLICA_DSNS"] = dsn
    nid = national_id_for(42 * 97, seed=SEED)
    started = time.monotonic()
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ssogw"),
            "audit",
            "lookups",
            "--national-id",
            nid,
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"ssogw audit lookups failed: {done.stderr[-1000:]}")
    json.loads(done.stdout)
    return seconds


#: Bytes per record on disk, indexes included (measured: 2,000,000 records took 835 MB).
BYTES_PER_RECORD = 420
#: Disk left free for everything else on the machine.
DISK_MARGIN = 25 * 2**30


def rows_that_fit(rows: int, store: Path, say: Callable[[str], None]) -> int:
    """``rows``, or fewer (whole tens of millions) when the disk cannot hold them."""
    held = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) if store.exists() else 0
    room = shutil.disk_usage(store.parent).free + held - DISK_MARGIN
    if rows * BYTES_PER_RECORD <= room:
        return rows
    fit = max(10_000_000, room // BYTES_PER_RECORD // 10_000_000 * 10_000_000)
    say(
        f"audit: {rows:,} records need about {rows * BYTES_PER_RECORD / 2**30:.0f} GB; this disk"
        f" has room for {room / 2**30:.0f} GB (keeping {DISK_MARGIN / 2**30:.0f} GB free):"
        f" measuring at {fit:,}"
    )
    return int(fit)


def bench(
    *,
    rows: int,
    store: Path,
    regenerate: bool,
    say: Callable[[str], None] = say_default,
    lookups: int = 200,
) -> dict[str, Any]:
    """Generate (or reuse) ``rows`` audit records in the store at ``store``; time lookups."""
    asked = rows
    store.parent.mkdir(parents=True, exist_ok=True)
    rows = rows_that_fit(rows, store, say)
    audit = AuditStore(store)
    dsn = audit.up()
    marker = audit.root / "generated.json"
    generated: dict[str, Any] | None = None
    if marker.exists() and not regenerate:
        generated = json.loads(marker.read_text())
        held = int(generated.get("rows", 0))
        # Reuse what is there when it is what was asked, or when the disk cannot hold what was
        # asked and the store already holds at least as much as would fit now.
        if held == asked or (rows < asked and held >= rows):
            rows = held
        else:
            generated = None
    if generated is None:
        marker.unlink(missing_ok=True)
        say(f"audit: generating {rows:,} records in {audit.root} (server-side SQL)")
        generated = asyncio.run(generate(dsn, rows, say))
        marker.write_text(json.dumps(generated))
        reused = False
    else:
        say(f"audit: reusing {rows:,} generated records in {audit.root}")
        reused = True
    say(f"audit: {lookups} lookups of typical persons, {max(20, lookups // 4)} of frequent ones")
    timed = asyncio.run(time_lookups(dsn, lookups))
    cli_s = cli_lookup(dsn)
    gen_s = generated["generate_seconds"]
    result = {
        "rows": rows,
        "asked_rows": asked,
        "generate_seconds": gen_s,
        "generate_text": (
            f"{gen_s / 60:.1f} min ({rows / gen_s:,.0f} records/s)"
            + (", earlier run" if reused else "")
        ),
        "bytes": generated.get("bytes"),
        "typical": timed["typical"],
        "hot": timed["hot"],
        "lookups": timed["lookups"],
        "p50_ms": timed["typical"]["p50_ms"],
        "p99_ms": max(timed["typical"]["p99_ms"], timed["hot"]["p99_ms"]),
        "max_ms": max(timed["typical"]["max_ms"], timed["hot"]["max_ms"]),
        "cli_seconds": round(cli_s, 2),
        "plan": timed["plan"],
    }
    say(f"  typical: {timed['typical']}; frequent: {timed['hot']}; CLI {cli_s:.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--store", type=Path, default=ROOT / "bench" / "out" / "audit")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--down", action="store_true", help="stop the audit store's server")
    args = parser.parse_args()
    if args.down:
        AuditStore(args.store).down()
        return
    print(
        json.dumps(
            bench(
                rows=args.rows, store=args.store, regenerate=args.regenerate, lookups=args.lookups
            ),
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
