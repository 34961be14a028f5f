"""`ssogw settlement import|report|export`: a partner's settlement file of one business day.

Import matches the file against the ledger and stores the result; report shows a stored result,
mismatches first; export writes the gateway's own file. Long jobs show a progress bar on stderr.
Each person a command prints or writes is recorded first, naming the operator.
"""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

from app.cli.output import emit, progress_bar, say
from app.cli.session import account, gateway, operator, run_async
from app.domain.calendar import BANGKOK
from app.domain.money import format_baht, to_baht
from app.domain.months import Month
from app.settings import Settings
from app.settlement.service import DEFAULT_LINES, ExportSummary, SettlementReport


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
    async with gateway(settings) as gw:
        with progress_bar(args, total=size) as bar:
            report = await gw.settlement_files.import_file(
                source,
                partner=args.partner,
                business_date=args.business_date,
                file_format=args.format,
                file_name=name,
                imported_by=f"operator:{account()}",
                progress=bar.update,
                limit=args.limit,
                requester=operator(),
            )
    emit(args, report.document(), _report_text(report))
    return 0


async def _report(args: argparse.Namespace, settings: Settings) -> int:
    async with gateway(settings) as gw:
        if args.id is not None:
            report = await gw.settlement_files.report(
                args.id, limit=args.limit, cursor=args.cursor, requester=operator()
            )
        else:
            report = await gw.settlement_files.report_for(
                partner=args.partner,
                business_date=args.business_date,
                limit=args.limit,
                cursor=args.cursor,
                requester=operator(),
            )
    emit(args, report.document(), _report_text(report))
    return 0


async def _export(args: argparse.Namespace, settings: Settings, out: BinaryIO) -> ExportSummary:
    async with gateway(settings) as gw:
        return await gw.settlement_files.export(
            out.write,
            partner=args.partner,
            business_date=args.business_date,
            file_format=args.format or "bank",
            requester=operator(),
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
            done = run_async(lambda: _export(args, settings, out))
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


# --- registration ----------------------------------------------------------------------------
def _day(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--partner", required=required, help="the partner's name")
    parser.add_argument(
        "--business-date",
        type=date.fromisoformat,
        required=required,
        help="the business day, YYYY-MM-DD",
    )


def register(subparsers: Any) -> None:
    """Add `settlement` to the `ssogw` parser."""
    settlement = subparsers.add_parser(
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
