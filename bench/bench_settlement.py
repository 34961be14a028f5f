"""Bulk benchmark (not a test): a 1,000,000-person extract and a 1,000,000-line settlement file.

Runs against the local pair under ``.data/`` or ``SSOGW_PRIMARY_DSN``, applies pending
migrations, then times:

1. ``import persons``: a generated Section 40 extract (TIS-620, Thai names) staged with COPY and
   upserted;
2. ``settlement import``: a generated bank-layout file of one partner-day whose ledger holds as
   many payments (written beforehand with COPY, not timed), parsed, matched and stored;
3. the same file again (recognised by its SHA-256, nothing changes).

Its rows use IDs ``09…`` and a partner of its own, removed afterwards unless ``--keep``.

    .venv/bin/python bench/bench_settlement.py [--persons 1000000] [--lines 1000000] [--keep]

Recorded on a 2-vCPU VM shared with other work (load average about 3), PostgreSQL 15 with
fsync on, into a scratch database of the local pair: import persons 26.8 s (37,300 persons/s);
settlement import + match 27.3 s (36,700 lines/s); the same file again 0.2 s; peak RSS 430 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg

from app.db.config import owner_dsn, service_role
from app.db.migrator import migrate
from app.db.pools import PoolConfig, open_pool, resolve_dsns
from app.domain.calendar import BANGKOK
from app.domain.months import Month
from app.domain.national_id import check_digit
from app.insured.demo_data import FIRST_FEMALE, FIRST_MALE, LAST_NAMES
from app.insured.extract_file import ExtractHeader, PersonRecord, write_extract
from app.insured.import_repository import PersonImportRepository
from app.insured.person_import import PersonImportService
from app.settings import Settings
from app.settlement.bank_file import BankHeader, SettlementLine, write_bank_file
from app.settlement.repository import SettlementRepository
from app.settlement.service import SettlementService

DAY = date(2030, 1, 15)
MONTH = Month(2030, 1)
PAID_AT = datetime(2030, 1, 15, 10, 30, tzinfo=BANGKOK)


def national_id(index: int) -> str:
    """IDs ``09`` + index: valid for Section 40 only, never made by the demo data or tests."""
    head = f"09{index:010d}"
    return head + check_digit(head)


def persons(count: int) -> Iterator[PersonRecord]:
    rng = random.Random(40)
    for i in range(count):
        first = rng.choice(FIRST_FEMALE + FIRST_MALE)
        yield PersonRecord(
            0, national_id(i), rng.choice(("นาย", "นาง", "น.ส.")), first, rng.choice(LAST_NAMES),
            40, "active", date(2020, 1, 1), s40_option=1 + i % 3, payment_method="counter",
            period_of_payment="202912", birth_date=date(1970 + i % 40, 1 + i % 12, 1 + i % 28),
            last_paid_on=date(2029, 12, 5), last_paid_satang=10_000,
        )  # fmt: skip


AMOUNT = {0: 7_000, 1: 10_000, 2: 30_000}  # option 1, 2, 3 (the person's option is 1 + i % 3)


def ledger_rows(partner_id: int, count: int) -> Iterator[tuple[object, ...]]:
    for i in range(count):
        yield (partner_id, f"B{i:012d}", f"BENCH-{partner_id}-{i}", national_id(i), 40,
               1 + i % 3, [MONTH.first_day], AMOUNT[i % 3], b"\0" * 32, DAY, PAID_AT,
               f"S{i % 10_000:05d}", "T1")  # fmt: skip


def file_lines(count: int) -> Iterator[SettlementLine]:
    """The partner's view of the day, with a few of every kind of difference."""
    for i in range(count):
        if i % 2_000 == 11:
            continue  # only in the gateway
        amount = AMOUNT[i % 3] + (100 if i % 1_000 == 7 else 0)
        month = MONTH.plus(1) if i % 1_000 == 9 else MONTH
        yield SettlementLine(0, f"B{i:012d}", national_id(i), 40, (month,), amount, PAID_AT,
                             "นางสมหญิง ใจดี", f"S{i % 10_000:05d}", "T1")  # fmt: skip
    for j in range(500):
        yield SettlementLine(0, f"X{j:012d}", national_id(j), 40, (MONTH,), 7_000, PAID_AT)


def write(path: Path, records: Iterator[bytes]) -> None:
    with path.open("wb") as out:
        for record in records:
            out.write(record)


async def run(args: argparse.Namespace) -> None:
    settings = Settings()
    dsn = resolve_dsns(primary_dsn=settings.primary_dsn, replica_dsns=settings.replica_dsns,
                       data_dir=Path(settings.data_dir))[0]  # fmt: skip
    # Migrated and cleaned up as the owner; measured as the service role, as the gateway runs.
    owner = await asyncpg.connect(owner_dsn(settings))
    try:
        await migrate(owner, service_role=service_role(settings))
    except BaseException:
        await owner.close()
        raise
    pool = await open_pool(dsn, PoolConfig(1, 4, 10, 3600), read_only=False, name="bench")
    work = Path(tempfile.mkdtemp(prefix="ssogw-bench-", dir=args.workdir))
    partner_id = 0
    try:
        extract = work / "s40.dat"
        started = time.monotonic()
        header = ExtractHeader(40, DAY, "bench")
        write(extract, write_extract(header, persons(args.persons)))
        print(f"generated a {args.persons:,}-person extract ({extract.stat().st_size:,} bytes)"
              f" in {time.monotonic() - started:.1f} s")  # fmt: skip
        people = PersonImportService(store=PersonImportRepository(lambda: pool))
        started = time.monotonic()
        with extract.open("rb") as source:
            result = await people.import_extract(source, section=40)
        took = time.monotonic() - started
        print(f"import persons: {took:.1f} s ({args.persons / took:,.0f} persons/s):"
              f" inserted {result.inserted:,}, updated {result.updated:,},"
              f" unchanged {result.unchanged:,}, rejected {result.rejected:,}")  # fmt: skip

        name = f"bench-{int(time.time())}"
        partner_id = await pool.fetchval(
            "INSERT INTO partners (name, display_name, status, cidrs, operations, rate_limit,"
            " username, password_hash, secret_enc) VALUES ($1, 'settlement benchmark',"
            " 'disabled', ARRAY['127.0.0.1/32']::cidr[], '{}', 1, $1, '-', '\\x00') RETURNING id",
            name,
        )
        lines = min(args.lines, args.persons)
        started = time.monotonic()
        rows = ledger_rows(partner_id, lines)
        columns = ("partner_id", "partner_txn_id", "receipt_no", "national_id", "section",
                   "s40_option", "months", "amount_satang", "request_hash", "business_date",
                   "paid_at", "store_id", "terminal_id")  # fmt: skip
        while batch := [row for _, row in zip(range(100_000), rows, strict=False)]:
            await pool.copy_records_to_table("payments", records=batch, columns=columns)
        await owner.execute("ANALYZE payments")
        settlement = work / "settlement.txt"
        write(settlement, write_bank_file(BankHeader(DAY, partner_code=name), file_lines(lines)))
        print(f"set up {lines:,} ledger rows and a {settlement.stat().st_size:,}-byte bank file"
              f" in {time.monotonic() - started:.1f} s")  # fmt: skip

        # The settlement of DAY, taken the morning after it (a day is settled once closed).
        morning_after = datetime.combine(DAY, datetime.min.time(), tzinfo=BANGKOK)
        service = SettlementService(
            store=SettlementRepository(lambda: pool),
            clock=lambda: morning_after + timedelta(days=1, hours=9),
        )
        for label in ("settlement import + match", "same file again"):
            started = time.monotonic()
            with settlement.open("rb") as source:
                report = await service.import_file(source, partner=name, business_date=DAY)
            took = time.monotonic() - started
            counts = {o.value: n for o, n in report.record.summary.counts.items() if n}
            print(f"{label}: {took:.1f} s ({lines / took:,.0f} lines/s), replayed="
                  f"{report.replayed}, {counts}")  # fmt: skip
    finally:
        if not args.keep:
            await cleanup(owner, partner_id, args.persons)
        await pool.close()
        await owner.close()
        await asyncio.to_thread(shutil.rmtree, work, True)


async def cleanup(conn: asyncpg.Connection, partner_id: int, count: int) -> None:
    """Remove the benchmark's partner, payments, settlement and persons (as the owner: the
    service role never deletes them)."""
    async with conn.transaction():
        if partner_id:
            await conn.execute("DELETE FROM settlement_imports WHERE partner_id = $1", partner_id)
            await conn.execute("DELETE FROM payments WHERE partner_id = $1", partner_id)
            await conn.execute("DELETE FROM partners WHERE id = $1", partner_id)
        await conn.execute(
            "DELETE FROM insured_persons WHERE national_id BETWEEN $1 AND $2",
            national_id(0), national_id(count - 1),
        )  # fmt: skip
    print("removed the benchmark's rows (use --keep to keep them)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--workdir", help="where to write the generated files (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the rows it wrote")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
