"""`ssogw audit report`, `ssogw feed export` and `ssogw complaints list`: accountability work.

Importing this module adds ``report`` to `ssogw audit` (via ``AUDIT_SUBCOMMANDS``) and the
``feed`` and ``complaints`` command groups (via ``EXTENSIONS``). Each command works on the
primary through a small pool of its own and leaves its audit records there, naming the
operator (the OS user) and the host.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from app.access_report.html import access_report_html
from app.access_report.repository import AccessReportRepository
from app.access_report.schemas import AccessReportOut, access_report_csv
from app.access_report.service import FORMATS, AccessReportService
from app.audit.service import Requester
from app.audit.writer import AuditWriter
from app.cli.audit import AUDIT_SUBCOMMANDS
from app.cli.main import EXTENSIONS, emit, primary_dsn, run_async, say
from app.complaints.records import STATES
from app.complaints.repository import ComplaintsRepository
from app.complaints.schemas import ComplaintPageOut
from app.complaints.service import MAX_PAGE, ComplaintService
from app.db.pools import PoolConfig, open_pool
from app.domain.calendar import BANGKOK
from app.feed.repository import FeedRepository
from app.feed.service import FeedManifest, FeedService
from app.settings import Settings


def operator() -> Requester:
    """The person at this terminal, as their audit records name them."""
    return Requester(
        protocol="cli",
        principal_kind="operator",
        request_id=uuid.uuid4().hex,
        operator=getpass.getuser(),
        terminal=socket.gethostname(),
    )


@asynccontextmanager
async def primary(settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, AuditWriter]]:
    """A small primary pool and an audit writer on it, for one command."""
    config = PoolConfig(1, 2, settings.connect_timeout_s, max(settings.command_timeout_s, 300.0))
    pool = await open_pool(primary_dsn(settings), config, read_only=False, name="cli-account")
    writer = AuditWriter(
        pool_provider=lambda: pool, max_batch=settings.audit_max_batch, max_wait_ms=0
    )
    await writer.start()
    try:
        yield pool, writer
    finally:
        try:
            await writer.stop()
        finally:
            await pool.close()


def _write_text(args: argparse.Namespace, text: str) -> None:
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        say(f"wrote {args.output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


# --- audit report ----------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """Every access to a person's record in the period, as HTML, CSV or JSON."""

    async def work() -> int:
        async with primary(settings) as (pool, writer):
            service = AccessReportService(
                store=AccessReportRepository(pool_provider=lambda: pool), sink=writer
            )
            report = await service.build(
                args.national_id, args.from_, args.to, requester=operator(),
                rendered_as=args.format,
            )  # fmt: skip
        if args.format == "html":
            _write_text(args, access_report_html(report))
        elif args.format == "csv":
            _write_text(args, access_report_csv(report))
        else:
            document = AccessReportOut.of(report).model_dump(by_alias=True, mode="json")
            _write_text(args, json.dumps(document, ensure_ascii=False, indent=2))
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


# --- feed export -----------------------------------------------------------------------------
def _manifest_text(path: Path, manifest: FeedManifest) -> str:
    return (
        f"{path}: {manifest.row_count} row(s), {manifest.byte_count} bytes, {manifest.file_format}"
        f" for partner {manifest.partner}\nsha256 {manifest.sha256}\n"
        f"scope {','.join(manifest.scope)}; amounts of {manifest.amount_month}"
    )


def cmd_feed(args: argparse.Namespace, settings: Settings) -> int:
    """Write a partner's feed and its manifest; one audit record for the export."""
    from tqdm import tqdm

    target = Path(args.output)
    partial = target.with_name(target.name + ".part")

    async def work() -> FeedManifest:
        async with primary(settings) as (pool, writer):
            service = FeedService(store=FeedRepository(pool_provider=lambda: pool), sink=writer)
            with (
                partial.open("wb") as out,
                tqdm(unit="B", unit_scale=True, file=sys.stderr, disable=args.quiet) as bar,
            ):
                return await service.export(
                    out.write, partner=args.partner, requester=operator(), section=args.section,
                    file_format=args.format, progress=bar.update,
                )  # fmt: skip

    try:
        manifest = asyncio.run(work())
    except BaseException:
        partial.unlink(missing_ok=True)  # no file leaves without its audit record
        raise
    partial.replace(target)
    document = {"file": target.name, **manifest.document()}
    manifest_path = target.with_name(target.name + ".manifest.json")
    manifest_path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", "utf-8")
    emit(args, {**document, "output": str(target), "manifest": str(manifest_path)},
         _manifest_text(target, manifest))  # fmt: skip
    return 0


# --- complaints ------------------------------------------------------------------------------
def cmd_complaints(args: argparse.Namespace, settings: Settings) -> int:
    """Complaint cases, oldest first; each person listed is recorded."""

    async def work() -> int:
        async with primary(settings) as (pool, writer):
            service = ComplaintService(
                store=ComplaintsRepository(pool_provider=lambda: pool), sink=writer
            )
            page = await service.list_cases(
                state=args.state, partner=args.partner, older_than=args.older_than,
                limit=args.limit, cursor=args.cursor, requester=operator(),
            )  # fmt: skip
        document = ComplaintPageOut.of(page).model_dump(by_alias=True, mode="json")
        lines = [
            f"{c.id:>8}  {c.created_at.astimezone(BANGKOK):%Y-%m-%d %H:%M}  {c.state:<13}"
            f" {c.category:<15} {c.partner or '-':<16} {c.receipt_no or '-':<18} {c.name or ''}"
            for c in page.complaints
        ]
        if page.next_cursor:
            say(f"more cases: continue with --cursor {page.next_cursor}")
        emit(args, document, "\n".join(lines) or "no complaint cases")
        return 0

    return run_async(work)


def register(subparsers: Any) -> None:
    """Add `ssogw feed` and `ssogw complaints` to the `ssogw` parser."""
    feed = subparsers.add_parser("feed", help="the partner feed of insured persons")
    fa = feed.add_subparsers(dest="feed_command", required=True, metavar="ACTION")
    export = fa.add_parser("export", help="write a partner's feed and its manifest")
    export.add_argument("--partner", required=True, help="the partner's name")
    export.add_argument("--section", type=int, choices=(39, 40), help="one section only")
    export.add_argument("--output", required=True, help="the file (FILE.manifest.json beside it)")
    export.add_argument(
        "--format",
        choices=("fixed", "csv"),
        default="fixed",
        help="fixed: 256-character TIS-620 records (default); csv: UTF-8",
    )
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    export.add_argument("--json", action="store_true", help="print one JSON document")
    export.set_defaults(handler=cmd_feed)

    complaints = subparsers.add_parser("complaints", help="complaint cases")
    ca = complaints.add_subparsers(dest="complaints_command", required=True, metavar="ACTION")
    listing = ca.add_parser("list", help="cases oldest first, by state, partner and age")
    listing.add_argument("--state", choices=STATES, help="only cases in this state")
    listing.add_argument("--partner", help="a partner's name")
    listing.add_argument("--older-than", help="opened longer ago than: P3D, PT12H, 72h, 3d")
    listing.add_argument("--limit", type=int, default=100, help=f"cases, 1-{MAX_PAGE} (100)")
    listing.add_argument("--cursor", help="continue after the page that printed this cursor")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(handler=cmd_complaints)


if add_report not in AUDIT_SUBCOMMANDS:
    AUDIT_SUBCOMMANDS.append(add_report)
if register not in EXTENSIONS:
    EXTENSIONS.append(register)
