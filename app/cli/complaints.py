"""`ssogw complaints list`: complaint cases, oldest first; each person listed is recorded."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.output import emit, say
from app.cli.session import gateway, operator, run_async
from app.complaints.records import STATES
from app.complaints.schemas import ComplaintPageOut
from app.complaints.service import MAX_PAGE
from app.domain.calendar import BANGKOK
from app.settings import Settings


def cmd_complaints(args: argparse.Namespace, settings: Settings) -> int:
    """Complaint cases, oldest first; each person listed is recorded."""

    async def work() -> int:
        async with gateway(settings) as gw:
            page = await gw.complaint_cases.list_cases(
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
    """Add `ssogw complaints` to the `ssogw` parser."""
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
