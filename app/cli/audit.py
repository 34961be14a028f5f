"""`ssogw audit`: who looked up a national ID (``lookups``); is the hash chain whole (``verify``).

Importing this module adds the ``audit`` command to ``app.cli.main`` (via ``EXTENSIONS``). Other
modules add ``audit`` subcommands by appending an ``add(subparsers)`` function to
``AUDIT_SUBCOMMANDS`` before the parser is built. Times given without a zone are Bangkok time;
a bare ``--to`` date includes that whole day. Times are printed in Bangkok time.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta
from typing import Any

from app.audit.queries import AuditQueries
from app.audit.records import LookupRecord, VerifyResult
from app.audit.service import MAX_PAGE, AuditService, LookupPage, Requester
from app.audit.writer import AuditWriter
from app.cli.main import EXTENSIONS, emit, primary_dsn, run_async, say
from app.db.pools import PoolConfig, open_pool
from app.domain.calendar import BANGKOK
from app.domain.national_id import validate_national_id
from app.settings import Settings

AddSubcommand = Callable[[Any], None]
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


# --- the service, wired for one command ------------------------------------------------------
@asynccontextmanager
async def audit_service(settings: Settings) -> AsyncIterator[AuditService]:
    """An AuditService on a small primary pool; its own lookups are recorded too."""
    config = PoolConfig(1, 2, settings.connect_timeout_s, max(settings.command_timeout_s, 300.0))
    pool = await open_pool(primary_dsn(settings), config, read_only=False, name="cli-audit")
    writer = AuditWriter(
        pool_provider=lambda: pool, max_batch=settings.audit_max_batch, max_wait_ms=0
    )
    await writer.start()
    try:
        yield AuditService(queries=AuditQueries(pool_provider=lambda: pool), sink=writer)
    finally:
        try:
            await writer.stop()
        finally:
            await pool.close()


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
    requester = Requester(
        protocol="cli",
        principal_kind="operator",
        request_id=uuid.uuid4().hex,
        operator=getpass.getuser(),
        terminal=socket.gethostname(),
    )

    async def work() -> int:
        async with audit_service(settings) as service:
            page = await service.lookups(
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
    }  # fmt: skip


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Recompute the chain; name the first broken record; exit 3 when broken."""

    async def work() -> int:
        async with audit_service(settings) as service:
            result = await service.verify(args.from_, args.to)
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


# --- registration ----------------------------------------------------------------------------
#: Subcommands of `ssogw audit`; append ``add(subparsers)`` here to add one (e.g. ``report``).
AUDIT_SUBCOMMANDS: list[AddSubcommand] = [add_lookups, add_verify]


def register(subparsers: Any) -> None:
    """Add `ssogw audit` and every subcommand in ``AUDIT_SUBCOMMANDS`` to the `ssogw` parser."""
    audit = subparsers.add_parser("audit", help="query and verify the audit trail")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    for add in AUDIT_SUBCOMMANDS:
        add(sub)


if register not in EXTENSIONS:
    EXTENSIONS.append(register)
