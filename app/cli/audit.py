"""`ssogw audit`: who looked up a national ID (``lookups``); is the hash chain whole (``verify``);
the insured person's access report (``report``).

Times given without a zone are Bangkok time; a bare ``--to`` date includes that whole day.
Times are printed in Bangkok time. A lookup and a report touch the ID, so each leaves an audit
record naming the operator, like the same call over the API.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import date, datetime, time, timedelta
from typing import Any

from app.access_report.html import access_report_html
from app.access_report.schemas import AccessReportOut, access_report_csv
from app.access_report.service import FORMATS
from app.audit.records import LookupRecord, VerifyResult
from app.audit.service import MAX_PAGE, LookupPage
from app.cli.output import emit, say, write_text
from app.cli.session import gateway, operator, run_async
from app.domain.calendar import BANGKOK
from app.domain.national_id import validate_national_id
from app.settings import Settings

EXIT_BROKEN = 3  # `audit verify` found the chain broken (1 and 2 mean it could not check)
COLUMNS = (
    "time", "principal_kind", "principal_name", "operator", "terminal", "source_ip",
    "protocol", "operation", "name_returned", "outcome", "request_id",
)  # fmt: skip


# --- times -----------------------------------------------------------------------------------
def _instant(text: str, *, end_of_day: bool) -> datetime:
    """An aware instant from ISO text; naive is Bangkok, a bare date its start (or next day's)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if end_of_day else 0)
            return datetime.combine(day, time(0), tzinfo=BANGKOK)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=BANGKOK)


def _from(text: str) -> datetime:
    return _instant(text, end_of_day=False)


def _to(text: str) -> datetime:
    return _instant(text, end_of_day=True)


def _local(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(BANGKOK).isoformat()


# --- lookups ---------------------------------------------------------------------------------
def _cells(record: LookupRecord) -> list[str]:
    values = {**{name: getattr(record, name, None) for name in COLUMNS}, "time": _local(record.at)}
    return ["" if values[name] is None else str(values[name]) for name in COLUMNS]


def _print_lookups(args: argparse.Namespace, national_id: str, page: LookupPage) -> None:
    if args.csv:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(["national_id", *COLUMNS])
        out.writerows([national_id, *_cells(r)] for r in page.records)
        return
    document = {
        "national_id": national_id,
        "from": _local(args.from_),
        "to": _local(args.to),
        "records": [
            dict(zip(COLUMNS, _cells(r), strict=True)) | {"seq": r.seq} for r in page.records
        ],
        "next_cursor": page.next_cursor,
    }
    rows = [list(COLUMNS), *(_cells(r) for r in page.records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    table = "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                      for row in rows)  # fmt: skip
    emit(args, document, f"{len(page.records)} record(s) for this ID, newest first\n{table}")


def cmd_lookups(args: argparse.Namespace, settings: Settings) -> int:
    """Who looked up the ID, when, and what name they saw."""
    national_id = validate_national_id(args.national_id.strip())  # before any connection
    requester = operator()

    async def work() -> int:
        async with gateway(settings) as gw:
            page = await gw.audit_trail.lookups(
                national_id, args.from_, args.to, args.limit, args.cursor, requester=requester
            )
        _print_lookups(args, national_id, page)
        if page.next_cursor:
            say(f"more records: continue with --cursor {page.next_cursor}")
        return 0

    return run_async(work)


def add_lookups(sub: Any) -> None:
    """`ssogw audit lookups`."""
    cmd = sub.add_parser("lookups", help="who looked up a national ID, when, what name they saw")
    cmd.add_argument("--national-id", required=True, help="the 13-digit national ID")
    cmd.add_argument("--from", dest="from_", type=_from, help="from this date/time (inclusive)")
    cmd.add_argument("--to", type=_to, help="to this date/time (a bare date: through that day)")
    cmd.add_argument("--limit", type=int, default=100, help=f"records, 1-{MAX_PAGE} (100)")
    cmd.add_argument("--cursor", help="continue after the page that printed this cursor")
    fmt = cmd.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="print CSV with a header row")
    fmt.add_argument("--json", action="store_true", help="print one JSON document")
    cmd.set_defaults(handler=cmd_lookups)


# --- verify ----------------------------------------------------------------------------------
def _verify_document(result: VerifyResult) -> dict[str, Any]:
    broken = result.first_broken
    return {
        "checked": result.checked,
        "ok": result.ok,
        "first_broken": None if broken is None else
        {"seq": broken.seq, "at": _local(broken.at), "reason": broken.reason},
        "faults": result.broken,
        "first_seq": result.first_seq,
        "last_seq": result.last_seq,
        "unlinked": result.unlinked,
    }  # fmt: skip


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Recompute the chain; name the first broken record; exit 3 when broken."""

    async def work() -> int:
        async with gateway(settings) as gw:
            result = await gw.audit_trail.verify(args.from_, args.to)
        span = f" (seq {result.first_seq}..{result.last_seq})" if result.checked else ""
        if result.first_broken is None:
            text = f"chain intact: {result.checked} record(s) checked{span}"
        else:
            b = result.first_broken
            when = f" at {_local(b.at)}" if b.at else ""
            text = (
                f"chain BROKEN: first broken record seq {b.seq}{when}: {b.reason}\n"
                f"{result.broken} fault(s) in {result.checked} record(s) checked{span}"
            )
        if result.unlinked:
            text += f"\n{result.unlinked} record(s) committed, still waiting for their chain link"
        emit(args, _verify_document(result), text)
        return 0 if result.ok else EXIT_BROKEN

    return run_async(work)


def add_verify(sub: Any) -> None:
    """`ssogw audit verify`."""
    cmd = sub.add_parser(
        "verify",
        help="recompute the hash chain and name the first broken record",
        description=f"Exit status: 0 intact, {EXIT_BROKEN} broken, 1 or 2 could not check.",
    )
    cmd.add_argument("--from", dest="from_", type=_from, help="records from this date/time")
    cmd.add_argument(
        "--to", type=_to, help="records before this date/time (a bare date: through it)"
    )
    cmd.add_argument("--json", action="store_true", help="print one JSON document")
    cmd.set_defaults(handler=cmd_verify)


# --- audit report ----------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """Every access to a person's record in the period, as HTML, CSV or JSON."""

    async def work() -> int:
        async with gateway(settings) as gw:
            report = await gw.access_report_builder.build(
                args.national_id, args.from_, args.to, requester=operator(),
                rendered_as=args.format,
            )  # fmt: skip
        if args.format == "html":
            write_text(args, access_report_html(report))
        elif args.format == "csv":
            write_text(args, access_report_csv(report))
        else:
            document = AccessReportOut.of(report).model_dump(by_alias=True, mode="json")
            write_text(args, json.dumps(document, ensure_ascii=False, indent=2))
        say(f"{len(report.entries)} access(es) to {report.masked_id}")
        return 0

    return run_async(work)


def add_report(sub: Any) -> None:
    """`ssogw audit report`."""
    cmd = sub.add_parser(
        "report", help="the insured person's access report: who saw their record, why, what"
    )
    cmd.add_argument("--national-id", required=True, help="the 13-digit national ID")
    cmd.add_argument(
        "--from", dest="from_", metavar="FROM", help="from this date or date-time (Bangkok)"
    )
    cmd.add_argument("--to", help="to this date (inclusive) or date-time (exclusive)")
    cmd.add_argument("--format", choices=FORMATS, default="html", help="html (default), csv, json")
    cmd.add_argument("--output", help="write to this file (default: stdout)")
    cmd.set_defaults(handler=cmd_report)


# --- registration ----------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    """Add `ssogw audit` and its subcommands to the `ssogw` parser."""
    audit = subparsers.add_parser("audit", help="query and verify the audit trail")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    for add in (add_lookups, add_verify, add_report):
        add(sub)
