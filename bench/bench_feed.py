"""Partner-feed benchmark (not a test): export N insured persons; time and peak memory.

Runs against the local pair under ``.data/`` (``--in-place`` also against ``SSOGW_PRIMARY_DSN``
and ``SSOGW_OWNER_DSN``). By default it creates a scratch database on the local pair, migrates
it as the owner and fills it with N generated persons (server-side,
not timed: Thai names, 15% Section 39, valid check digits), then exports a benchmark partner's
feed in each layout through the real ``FeedService`` and ``FeedRepository`` (``COPY … TO
STDOUT``, one audit record per export) as the service role, and prints the time, rows/s, file
size and the process's peak RSS. The scratch database is dropped afterwards unless ``--keep``;
``--in-place`` exports the persons the database already holds instead.

    .venv/bin/python bench/bench_feed.py [--persons 13000000] [--format both|fixed|csv]
                                         [--workdir DIR] [--keep] [--in-place]

Recorded on a 2-vCPU VM shared with other work (load average about 3), PostgreSQL 15 of the
local pair, 13,000,000 persons: fixed layout 24.0 s (540,600 rows/s; 3,354,000,516 bytes),
CSV 19.0 s (684,500 rows/s; 1,123,202,722 bytes); peak RSS of the exporting process 44 MB
(41 MB before the first export). Generating the persons took 89 s (not part of the figure).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app.audit.records import Requester
from app.audit.writer import AuditWriter
from app.db.config import owner_dsn, service_role
from app.db.local_pair import LocalPair
from app.db.migrator import migrate
from app.db.pools import PoolConfig, open_pool, resolve_dsns
from app.feed.repository import FeedRepository
from app.feed.service import FeedService
from app.insured.demo_data import FIRST_FEMALE, FIRST_MALE, LAST_NAMES
from app.main import wall_clock
from app.settings import Settings

CHUNK = 1_000_000
# A 12-digit body 1 + 11 digits of the row number, and its check digit (DOMAIN.md).
_BODY = "(100000000000 + i)"
_SUM = " + ".join(f"({_BODY} / {10 ** (11 - k)} % 10) * {13 - k}" for k in range(12))
GENERATE = f"""
INSERT INTO insured_persons (national_id, title, first_name, last_name, section, status,
                             effective_date, s40_option)
SELECT {_BODY}::text || ((11 - ({_SUM}) % 11) % 10)::text,
       (ARRAY['นาย', 'นาง', 'นางสาว'])[1 + i % 3],
       ($3::text[])[1 + (i * 7) % cardinality($3::text[])],
       ($4::text[])[1 + (i * 13) % cardinality($4::text[])],
       CASE WHEN i % 100 < 15 THEN 39 ELSE 40 END,
       CASE WHEN i % 50 = 0 THEN 'terminated' WHEN i % 97 = 0 THEN 'inactive' ELSE 'active' END,
       date '2015-01-01',
       CASE WHEN i % 100 < 15 THEN NULL ELSE 1 + i % 3 END
FROM generate_series($1::bigint, $2::bigint) AS i
"""
PARTNER = """
INSERT INTO partners (name, display_name, cidrs, operations, rate_limit, username, password_hash,
                      secret_enc)
VALUES ($1, 'feed benchmark', ARRAY['127.0.0.1/32']::cidr[], '{}', 1, $1, '-', '\\x00')
"""


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def fill(owner: str, persons: int, *, service_role: str) -> None:
    """Migrate the scratch database and generate ``persons`` insured persons in it."""
    conn = await asyncpg.connect(owner)
    try:
        await migrate(conn, service_role=service_role)
        started = time.monotonic()
        for first in range(0, persons, CHUNK):
            last = min(first + CHUNK, persons) - 1
            await conn.execute(GENERATE, first, last, list(FIRST_FEMALE + FIRST_MALE),
                               list(LAST_NAMES), timeout=3600)  # fmt: skip
            print(f"  generated {last + 1:,} persons ({time.monotonic() - started:.0f} s)")
        await conn.execute("VACUUM (ANALYZE) insured_persons", timeout=3600)
        print(f"generated and vacuumed {persons:,} persons in {time.monotonic() - started:.0f} s")
    finally:
        await conn.close()


async def export(dsn: str, owner: str, formats: list[str], workdir: Path) -> None:
    """Export a benchmark partner's feed in each layout as the service role (``dsn``); print
    what it took. The benchmark partner is removed as the owner."""
    pool = await open_pool(dsn, PoolConfig(1, 2, 10, 3600), read_only=False, name="bench-feed")
    writer = AuditWriter(pool_provider=lambda: pool, max_batch=10, max_wait_ms=0)
    await writer.start()
    name = f"bench-feed-{uuid.uuid4().hex[:6]}"
    try:
        await pool.execute(PARTNER, name)
        service = FeedService(
            store=FeedRepository(pool_provider=lambda: pool), sink=writer, clock=wall_clock
        )
        requester = Requester("cli", "operator", uuid.uuid4().hex, operator="bench")
        for file_format in formats:
            target = workdir / f"feed.{'txt' if file_format == 'fixed' else 'csv'}"
            before = peak_rss_mb()
            started = time.monotonic()
            with target.open("wb", buffering=1 << 20) as out:
                manifest = await service.export(
                    out.write, partner=name, requester=requester, file_format=file_format
                )
            took = time.monotonic() - started
            print(
                f"{file_format}: {manifest.row_count:,} rows in {took:.1f} s"
                f" ({manifest.row_count / took:,.0f} rows/s, {manifest.byte_count / took / 1e6:.0f}"
                f" MB/s), {manifest.byte_count:,} bytes, sha256 {manifest.sha256[:16]}…;"
                f" peak RSS {before:.0f} MB before, {peak_rss_mb():.0f} MB after"
            )
            target.unlink()
        audited = await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE operation = 'PartnerFeedExport'"
            " AND detail->>'partner' = $1",
            name,
        )
        print(f"audit records of the exports: {audited}")
    finally:
        await writer.stop()
        await pool.close()
        conn = await asyncpg.connect(owner)
        try:
            await conn.execute("DELETE FROM partners WHERE name = $1", name)
        finally:
            await conn.close()


async def run(args: argparse.Namespace, workdir: Path) -> None:
    settings = Settings()
    dsn = resolve_dsns(primary_dsn=settings.primary_dsn, replica_dsns=settings.replica_dsns,
                       data_dir=Path(settings.data_dir))[0]  # fmt: skip
    owner = owner_dsn(settings)
    formats = ["fixed", "csv"] if args.format == "both" else [args.format]
    if args.in_place:
        await export(dsn, owner, formats, workdir)
        return
    # Only the local pair's superuser may create a database; it is made the owner role's.
    pair = LocalPair(Path(settings.data_dir))
    scratch = f"ssogw_bench_feed_{uuid.uuid4().hex[:8]}"
    service = await asyncio.to_thread(pair.create_database, scratch)
    try:
        print(f"scratch database {scratch}")
        await fill(with_database(owner, scratch), args.persons, service_role=service_role(settings))
        await export(service, with_database(owner, scratch), formats, workdir)
    finally:
        if args.keep:
            print(f"kept the scratch database {scratch}")
        else:
            await asyncio.to_thread(pair.drop_database, scratch)
            print(f"dropped the scratch database {scratch} (use --keep to keep it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=13_000_000)
    parser.add_argument("--format", choices=("both", "fixed", "csv"), default="both")
    parser.add_argument("--workdir", help="where to write the files (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--in-place", action="store_true",
                        help="export the database's own persons; no scratch database")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ssogw-bench-feed-", dir=args.workdir) as workdir:
        asyncio.run(run(args, Path(workdir)))


if __name__ == "__main__":
    main()
