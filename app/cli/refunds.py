"""`ssogw refunds list`: who is owed what, and why: a rate cut after they paid (``rate_cut``),
or a month paid under a membership that had ended by then (``cover_ended``, refunded in full).

The CSV is for SSO's officers: besides the contribution month as YYYY-MM (``month``, for
programs), it gives the month as people read it, in the Buddhist Era (``month_th``:
``มี.ค. 2584``), and then the reason; both appended, so that scripts reading the earlier
columns by position still work.
"""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

from app.cli.output import emit
from app.cli.session import gateway, operator, run_async
from app.domain.calendar import thai_month_short
from app.domain.money import format_baht, to_baht
from app.domain.months import Month
from app.domain.spreadsheet_cells import escape_row
from app.refunds.service import PersonRefund
from app.settings import Settings

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
    "month_th",  # the month in the Buddhist Era, for people (appended)
    "reason",  # rate_cut | cover_ended (appended after month_th)
)


def cmd_refunds(args: argparse.Namespace, settings: Settings) -> int:
    """List who is owed what: after a rate cut, or for months paid after cover ended."""
    first, last = Month.parse(args.from_), Month.parse(args.to)

    async def work() -> int:
        persons: list[PersonRefund] = []
        out = csv.writer(sys.stdout, lineterminator="\n")
        if args.csv:
            out.writerow(REFUND_COLUMNS)
        async with gateway(settings) as gw:
            async for person in gw.refunds.refunds(first, last, requester=operator()):
                if args.csv:
                    out.writerows(
                        escape_row(
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
                                thai_month_short(m.month),
                                m.reason,
                            ]
                        )
                        for m in person.months
                    )
                else:
                    persons.append(person)
        if not args.csv:
            total = sum(p.refund_satang for p in persons)
            document = {
                "from": str(first),
                "to": str(last),
                "persons": len({p.national_id for p in persons}),  # owed in two sections: one
                "months": sum(len(p.months) for p in persons),
                "total": str(to_baht(total)),
                "refunds": [p.document() for p in persons],
            }
            text = [
                f"{p.national_id}  {p.title}{p.first_name} {p.last_name}  S{p.section}  "
                f"{', '.join(f'{m.month} {m.reason}' for m in p.months)}"
                f"  {format_baht(p.refund_satang)}"
                for p in persons
            ]
            count = len({p.national_id for p in persons})
            text.append(f"{count} persons, {format_baht(total)} baht to refund")
            emit(args, document, "\n".join(text))
        return 0

    return run_async(work)


def register(subparsers: Any) -> None:
    """Add `refunds` to the `ssogw` parser."""
    refunds = subparsers.add_parser(
        "refunds",
        help="refunds owed: overpayments after a rate cut, months paid after cover ended",
    )
    ra = refunds.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = ra.add_parser("list", help="person, months, amount and reason to refund")
    listing.add_argument(
        "--from", dest="from_", metavar="YYYY-MM", required=True, help="first month"
    )
    listing.add_argument("--to", metavar="YYYY-MM", required=True, help="last month")
    fmt = listing.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV, one row per person and month")
    fmt.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(handler=cmd_refunds)
