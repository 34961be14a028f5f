"""`ssogw settlement …`, `ssogw import persons` and `ssogw refunds list`: bulk exchange.

Importing this module adds the three command groups to ``app.cli.main`` (via ``EXTENSIONS``). They
work on the primary only (a small pool of their own); long jobs show a progress bar on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg

from app.cli.main import EXTENSIONS, emit, primary_dsn, run_async, say
from app.counter.ledger import PgLedger
from app.db.pools import PoolConfig, open_pool
from app.domain.calendar import BANGKOK
from app.domain.money import format_baht, to_baht
from app.domain.months import Month
from app.insured.import_repository import PersonImportRepository
from app.insured.person_import import PersonImportService
from app.refunds.repository import RefundsRepository
from app.refunds.service import PersonRefund, RefundsService
from app.settings import Settings
from app.settlement.repository import SettlementRepository
from app.settlement.service import DEFAULT_LINES, ExportSummary, SettlementReport, SettlementService


@asynccontextmanager
async def primary_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A small pool to the primary for one command."""
    config = PoolConfig(1, 2, settings.connect_timeout_s, settings.command_timeout_s)
    pool = await open_pool(primary_dsn(settings), config, read_only=False, name="cli-bulk")
    try:
        yield pool
    finally:
        await pool.close()


def _bar(args: argparse.Namespace, total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, disable=args.quiet)


# --- settlement ------------------------------------------------------------------------------
def _side(months: tuple[Month, ...] | None, satang: int | None) -> str:
    if months is None or satang is None:
        return "-"
    return f"{','.join(map(str, months))} {format_baht(satang)}"


def _report_text(report: SettlementReport) -> str:
    r, summary = report.record, report.record.summary
    lines = [
        f"settlement {r.id}: partner {r.partner}, business date {r.business_date},"
        f" {r.file_format} file {r.file_name or ''} ({r.file_bytes} bytes,"
        f" sha256 {r.sha256.hex()[:16]}…)",
        f"imported {r.imported_at.astimezone(BANGKOK):%Y-%m-%d %H:%M:%S %z} by"
        f" {r.imported_by or '?'}"
        + ("  — this file was imported before; nothing changed" if report.replayed else ""),
        "  ".join(f"{o.value} {n}" for o, n in summary.counts.items()),
        f"{'section':>7} {'file lines':>10} {'file baht':>16} {'gateway lines':>13}"
        f" {'gateway baht':>16} {'matched':>8} {'difference':>14}",
    ]
    for section, t in sorted(summary.totals.items()):
        lines.append(
            f"{section:>7} {t.file_lines:>10} {format_baht(t.file_satang):>16}"
            f" {t.gateway_lines:>13} {format_baht(t.gateway_satang):>16} {t.matched_lines:>8}"
            f" {format_baht(t.difference_satang):>14}"
        )
    for m in report.lines:
        where = f"line {m.line_no}" if m.line_no else "no line"
        lines.append(
            f"{m.outcome.value:<16} {where:<12} {m.partner_txn_id:<20} {m.national_id} s{m.section}"
            f"  file {_side(m.file_months, m.file_amount_satang)}"
            f" | gateway {_side(m.gateway_months, m.gateway_amount_satang)}"
            f"  {m.note or ''}".rstrip()
        )
    if report.next_cursor:
        lines.append(f"more lines: continue with --cursor {report.next_cursor}")
    return "\n".join(lines)


async def _import(args: argparse.Namespace, settings: Settings, source: BinaryIO, name: str) -> int:
    size = os.fstat(source.fileno()).st_size
    async with primary_pool(settings) as pool:
        service = SettlementService(store=SettlementRepository(lambda: pool))
        with _bar(args, size) as bar:
            report = await service.import_file(
                source,
                partner=args.partner,
                business_date=args.business_date,
                file_format=args.format,
                file_name=name,
                imported_by=f"operator:{getpass.getuser()}",
                progress=bar.update,
                limit=args.limit,
            )
    emit(args, report.document(), _report_text(report))
    return 0


async def _report(args: argparse.Namespace, settings: Settings) -> int:
    async with primary_pool(settings) as pool:
        service = SettlementService(store=SettlementRepository(lambda: pool))
        if args.id is not None:
            report = await service.report(args.id, limit=args.limit, cursor=args.cursor)
        else:
            report = await service.report_for(
                partner=args.partner,
                business_date=args.business_date,
                limit=args.limit,
                cursor=args.cursor,
            )
    emit(args, report.document(), _report_text(report))
    return 0


async def _export(args: argparse.Namespace, settings: Settings, out: BinaryIO) -> ExportSummary:
    async with primary_pool(settings) as pool:
        service = SettlementService(store=SettlementRepository(lambda: pool))
        return await service.export(
            out.write,
            partner=args.partner,
            business_date=args.business_date,
            file_format=args.format or "bank",
        )


def cmd_settlement(args: argparse.Namespace, settings: Settings) -> int:
    """Import, report or export a partner's settlement of one business day."""
    if args.action == "import":
        path = Path(args.file)
        with path.open("rb") as source:
            return run_async(lambda: _import(args, settings, source, path.name))
    if args.action == "report":
        if args.id is None and not (args.partner and args.business_date):
            say("error: give an import id, or --partner and --business-date")
            return 2
        return run_async(lambda: _report(args, settings))
    target = Path(args.output)
    partial = target.with_name(f".{target.name}.partial")  # renamed only once complete
    try:
        with partial.open("wb") as out:
            done = asyncio.run(_export(args, settings, out))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    emit(
        args,
        {"output": str(target), "format": done.file_format, "lines": done.lines,
         "total": str(to_baht(done.total_satang))},
        f"wrote {done.lines} transactions ({format_baht(done.total_satang)} baht) to {target}",
    )  # fmt: skip
    return 0


# --- persons ---------------------------------------------------------------------------------
def cmd_import_persons(args: argparse.Namespace, settings: Settings) -> int:
    """Load a source-system extract of insured persons."""
    path = Path(args.file)
    size = path.stat().st_size

    async def work(source: BinaryIO) -> int:
        async with primary_pool(settings) as pool:
            service = PersonImportService(
                store=PersonImportRepository(lambda: pool), prefixes=settings.prefixes()
            )
            with _bar(args, size) as bar:
                result = await service.import_extract(
                    source, section=int(args.format[1:]), progress=bar.update
                )
        text = [
            f"{path.name}: S{result.section} extract of {result.extract_date} from"
            f" {result.source or '?'}: {result.lines} lines in {result.seconds:.1f} s",
            f"inserted {result.inserted}, updated {result.updated}, unchanged {result.unchanged},"
            f" rejected {result.rejected}",
            *(f"  line {r.line_no}: {r.field}: {r.reason}" for r in result.rejections[:50]),
        ]
        if result.rejected > 50:
            text.append(f"  … {result.rejected - 50} more rejected lines (see --json)")
        emit(args, result.document(), "\n".join(text))
        return 0

    with path.open("rb") as source:
        return run_async(lambda: work(source))


# --- refunds ---------------------------------------------------------------------------------
REFUND_COLUMNS = (
    "national_id",
    "title",
    "first_name",
    "last_name",
    "section",
    "option",
    "month",
    "paid",
    "due",
    "refund",
)


def cmd_refunds(args: argparse.Namespace, settings: Settings) -> int:
    """List who is owed what after a retroactive rate cut."""
    first, last = Month.parse(args.from_), Month.parse(args.to)

    async def work() -> int:
        persons: list[PersonRefund] = []
        out = csv.writer(sys.stdout, lineterminator="\n")
        if args.csv:
            out.writerow(REFUND_COLUMNS)
        async with primary_pool(settings) as pool:
            ledger = PgLedger(primary=lambda: pool, router=_no_router)
            service = RefundsService(source=RefundsRepository(lambda: pool), rates=ledger)
            async for person in service.refunds(first, last):
                if args.csv:
                    out.writerows(
                        [
                            person.national_id,
                            person.title,
                            person.first_name,
                            person.last_name,
                            person.section,
                            m.option or "",
                            m.month,
                            to_baht(m.paid_satang),
                            to_baht(m.due_satang),
                            to_baht(m.refund_satang),
                        ]
                        for m in person.months
                    )
                else:
                    persons.append(person)
        if not args.csv:
            total = sum(p.refund_satang for p in persons)
            document = {
                "from": str(first),
                "to": str(last),
                "persons": len(persons),
                "months": sum(len(p.months) for p in persons),
                "total": str(to_baht(total)),
                "refunds": [p.document() for p in persons],
            }
            text = [
                f"{p.national_id}  {p.title}{p.first_name} {p.last_name}  S{p.section}  "
                f"{', '.join(str(m.month) for m in p.months)}  {format_baht(p.refund_satang)}"
                for p in persons
            ]
            text.append(f"{len(persons)} persons, {format_baht(total)} baht to refund")
            emit(args, document, "\n".join(text))
        return 0

    return run_async(work)


def _no_router() -> Any:
    raise RuntimeError("this command reads the primary only")


# --- registration ----------------------------------------------------------------------------
def _day(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--partner", required=required, help="the partner's name")
    parser.add_argument(
        "--business-date",
        type=date.fromisoformat,
        required=required,
        help="the business day, YYYY-MM-DD",
    )


def register(sub: Any) -> None:
    """Add `settlement`, `import` and `refunds` to the `ssogw` parser."""
    settlement = sub.add_parser(
        "settlement", help="partner settlement files: import, report, export"
    )
    sa = settlement.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = sa.add_parser("import", help="import a settlement file and match it against the ledger")
    imp.add_argument("file", help="the partner's file (bank 256-character TIS-620, or CSV)")
    _day(imp, required=True)
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    rep = sa.add_parser("report", help="show a stored result, mismatches first")
    rep.add_argument("id", nargs="?", type=int, help="the import's id (else the day's latest)")
    _day(rep, required=False)
    rep.add_argument("--cursor", help="continue after the page that printed this cursor")
    exp = sa.add_parser("export", help="write the gateway's own file of a partner's day")
    _day(exp, required=True)
    exp.add_argument("--output", required=True, help="the file to write")
    for parser in (imp, exp):
        parser.add_argument(
            "--format",
            choices=("bank", "csv"),
            help="layout (import: detected when omitted; export: bank)",
        )
    for parser in (imp, rep):
        parser.add_argument(
            "--limit",
            type=int,
            default=DEFAULT_LINES,
            help=f"result lines to show ({DEFAULT_LINES})",
        )
    for parser in (imp, rep, exp):
        parser.add_argument("--json", action="store_true", help="print one JSON document")
    settlement.set_defaults(handler=cmd_settlement)

    group = sub.add_parser("import", help="bulk imports from the source system")
    ia = group.add_subparsers(dest="what", required=True, metavar="WHAT")
    persons = ia.add_parser("persons", help="load a fixed-width TIS-620 extract of insured persons")
    persons.add_argument("file", help="the extract (layout: docs/formats.md)")
    persons.add_argument("--format", required=True, choices=("s39", "s40"), help="which extract")
    persons.add_argument("--quiet", action="store_true", help="no progress bar")
    persons.add_argument("--json", action="store_true", help="print one JSON document")
    persons.set_defaults(handler=cmd_import_persons)

    refunds = sub.add_parser("refunds", help="overpayments to refund after a retroactive rate cut")
    ra = refunds.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = ra.add_parser("list", help="person, months and amount to refund")
    listing.add_argument(
        "--from", dest="from_", metavar="YYYY-MM", required=True, help="first month"
    )
    listing.add_argument("--to", metavar="YYYY-MM", required=True, help="last month")
    fmt = listing.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV, one row per person and month")
    fmt.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(handler=cmd_refunds)


if register not in EXTENSIONS:
    EXTENSIONS.append(register)
