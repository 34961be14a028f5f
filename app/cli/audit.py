"""`ssogw audit`: who looked up a national ID (``lookups``); is the hash chain whole and as it was
sealed (``verify``, also of an export, without a database); the insured person's access report
(``report``); the seal's public key (``seal-key``); seal the chain head now (``seal``); the
chain and its checkpoints in one file (``export``).

Times given without a zone are Bangkok time; a bare ``--to`` date includes that whole day.
Times are printed in Bangkok time. A lookup, a report and an export touch IDs, so each leaves an
audit record naming the operator, like the same call over the API.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from app.access_report.html import access_report_html
from app.access_report.schemas import AccessReportOut, access_report_csv
from app.access_report.service import FORMATS
from app.audit.records import LookupRecord, VerifyResult
from app.audit.seals.checkpoint_dir import CheckpointDir
from app.audit.seals.export_file import verify_export
from app.audit.seals.seal_key import (
    key_id,
    load_public_key,
    new_key_file,
    public_key_file,
    public_pem,
    signing_key,
    trusted_keys,
)
from app.audit.service import MAX_PAGE, LookupPage
from app.cli.output import emit, say, write_text
from app.cli.session import gateway, operator, run_async
from app.domain.calendar import BANGKOK, has_utc_instant, thai_datetime
from app.domain.national_id import validate_national_id
from app.domain.spreadsheet_cells import escape_row
from app.errors import InvalidInput
from app.settings import Settings

EXIT_BROKEN = 3  # `audit verify` found the chain broken (1 and 2 mean it could not check)
EXIT_UNSEALED = 4  # `audit verify`: records, and no checkpoint verifies: nothing holds them
COLUMNS = (
    "time", "principal_kind", "principal_name", "operator", "terminal", "source_ip",
    "protocol", "operation", "name_returned", "outcome", "request_id", "calls", "until",
    "included_in",
)  # fmt: skip


# --- times -----------------------------------------------------------------------------------
def _instant(text: str, *, end_of_day: bool) -> datetime:
    """An aware instant from ISO text; naive is Bangkok, a bare date its start (or next day's)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if end_of_day else 0)
            moment = datetime.combine(day, time(0), tzinfo=BANGKOK)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {text!r}") from None
    except OverflowError:  # through 9999-12-31: the day after is no date Python has
        raise _out_of_range(text) from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=BANGKOK)
    if not has_utc_instant(moment):  # e.g. 0001-01-01 in Bangkok is still year 0 in UTC
        raise _out_of_range(text)
    return moment


def _out_of_range(text: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"not a time within the years 1 to 9999 (UTC): {text!r}")


def _from(text: str) -> datetime:
    return _instant(text, end_of_day=False)


def _to(text: str) -> datetime:
    return _instant(text, end_of_day=True)


def _local(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(BANGKOK).isoformat()


# --- lookups ---------------------------------------------------------------------------------
def _included_in(record: LookupRecord) -> str | None:
    """ "feed F to partner P on D" for a feed export whose manifest held the ID."""
    if record.feed_export_id is None:
        return None
    day = record.at.astimezone(BANGKOK).date().isoformat()
    return f"feed {record.feed_export_id} to partner {record.feed_partner} on {day}"


def _cells(record: LookupRecord) -> list[str]:
    values = {
        **{name: getattr(record, name, None) for name in COLUMNS},
        "time": _local(record.at),
        "until": _local(record.last_at),
        "included_in": _included_in(record),
    }
    return ["" if values[name] is None else str(values[name]) for name in COLUMNS]


def _print_lookups(args: argparse.Namespace, national_id: str, page: LookupPage) -> None:
    if args.csv:  # for officers: the time in the Buddhist Era too, in the last column
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(["national_id", *COLUMNS, "time_th"])
        out.writerows(
            escape_row([national_id, *_cells(r), thai_datetime(r.at)]) for r in page.records
        )
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
def _verify_document(result: VerifyResult, store: str) -> dict[str, Any]:
    broken = result.first_broken
    return {
        "checked": result.checked,
        "ok": result.ok,
        "first_broken": None if broken is None else
        {"seq": broken.seq, "at": _local(broken.at), "reason": broken.reason},
        "faults": result.broken,
        "first_seq": result.first_seq,
        "last_seq": result.last_seq,
        "checkpoints": result.checkpoints,
        "sealed_seq": result.sealed_seq,
        "head_seq": result.head_seq,
        "checkpoint_store": store,
        "unlinked": result.unlinked,
        "no_checkpoint": None if result.first_unsealed is None else
        {"first_unsealed_seq": result.first_unsealed},
    }  # fmt: skip


def _print_verify(args: argparse.Namespace, result: VerifyResult, store: str) -> int:
    span = f" (seq {result.first_seq}..{result.last_seq})" if result.checked else ""
    if result.first_broken is None and result.first_unsealed is not None:
        text = (
            f"NO CHECKPOINT: first unsealed record seq {result.first_unsealed}: no signed "
            f"checkpoint in {store} verifies, so nothing holds the {result.checked} record(s) "
            f"checked{span}; their hashes agree with each other, which anyone with database "
            "access can make true (seal the chain: `ssogw audit seal`)"
        )
    elif result.first_broken is None:
        text = f"chain intact: {result.checked} record(s) checked{span}"
    else:
        b = result.first_broken
        when = f" at {_local(b.at)}" if b.at else ""
        text = (
            f"chain BROKEN: first broken record seq {b.seq}{when}: {b.reason}\n"
            f"{result.broken} fault(s) in {result.checked} record(s) checked{span}"
        )
    if result.sealed_seq is None and result.first_unsealed is None:
        text += f"\nnot sealed: no checkpoint in {store} verifies"
    elif result.sealed_seq is None:
        pass  # said above
    else:
        after = max(0, (result.head_seq or 0) - result.sealed_seq)
        text += (
            f"\nsealed through seq {result.sealed_seq} by {result.checkpoints} verified "
            f"checkpoint(s) from {store}; {after} record(s) after it not sealed yet"
        )
    if result.unlinked:
        text += f"\n{result.unlinked} record(s) committed, still waiting for their chain link"
    emit(args, _verify_document(result, store), text)
    if result.first_broken is not None:
        return EXIT_BROKEN
    return EXIT_UNSEALED if result.first_unsealed is not None else 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Recompute the chain and hold it to the signed checkpoints kept outside the database (or
    verify an export, with no database); name the first broken record; exit 3 when broken."""
    keys = trusted_keys(args.public_key) if args.public_key else None
    store = CheckpointDir(args.seal_dir or settings.seal_dir())
    if args.from_export is not None:
        if keys is None:
            raise InvalidInput("An export is verified with --public-key.", field="public_key")
        if args.from_ or args.to:
            raise InvalidInput("An export is verified whole: no --from or --to.", field="from")
        stored = store.all() if args.seal_dir else None
        result = verify_export(args.from_export, keys, checkpoints=stored)
        return _print_verify(args, result, store.where if args.seal_dir else "the export")
    if args.seal_dir:
        settings = settings.model_copy(update={"audit_seal_dir": args.seal_dir})

    async def work() -> int:
        async with gateway(settings) as gw:
            result = await gw.audit_trail.verify(args.from_, args.to, public_keys=keys)
        return _print_verify(args, result, store.where)

    return run_async(work)


def add_verify(sub: Any) -> None:
    """`ssogw audit verify`."""
    cmd = sub.add_parser(
        "verify",
        help="recompute the hash chain, hold it to the signed checkpoints, name the first fault",
        description=f"Exit status: 0 intact, {EXIT_BROKEN} broken, {EXIT_UNSEALED} no checkpoint"
        " (records that no signed checkpoint holds), 1 or 2 could not check.",
    )
    cmd.add_argument("--from", dest="from_", type=_from, help="records from this date/time")
    cmd.add_argument(
        "--to", type=_to, help="records before this date/time (a bare date: through it)"
    )
    cmd.add_argument(
        "--public-key", type=Path, action="append", metavar="PUBFILE",
        help="trust checkpoints signed by this public key (PEM; repeat for earlier keys); "
        "default: SSOGW_AUDIT_SEAL_KEY_FILE's .pub and SSOGW_AUDIT_SEAL_PUBLIC_KEYS",
    )  # fmt: skip
    cmd.add_argument(
        "--seal-dir", type=Path, metavar="DIR",
        help="the checkpoint directory (default SSOGW_AUDIT_SEAL_DIR); with --from-export, "
        "check the export against it instead of the checkpoints in the export",
    )  # fmt: skip
    cmd.add_argument(
        "--from-export", type=Path, metavar="FILE",
        help="verify this export (`ssogw audit export`) with no database; needs --public-key",
    )  # fmt: skip
    cmd.add_argument("--json", action="store_true", help="print one JSON document")
    cmd.set_defaults(handler=cmd_verify)


# --- seals and the export --------------------------------------------------------------------
def cmd_seal_key(args: argparse.Namespace, settings: Settings) -> int:
    """Print the public key that verifies the checkpoints; --generate makes a new signing key."""
    if args.generate is not None:
        path, public = args.generate, new_key_file(args.generate).public
    else:
        path, made_here = settings.seal_key_file(), settings.seal_key_is_local()
        if path.exists() or made_here:  # the default key is made on first use, as serve does
            public = signing_key(path, generate=made_here).public
        else:
            public = load_public_key(public_key_file(path))
    pem = public_pem(public)
    if args.out is not None:
        args.out.write_text(pem, encoding="ascii")
        say(f"wrote {args.out}")
    emit(args, {"key_id": key_id(public), "public_key": pem, "key_file": str(path)}, pem.rstrip())
    return 0


def cmd_seal(args: argparse.Namespace, settings: Settings) -> int:
    """Seal the chain head now, as serving instances do at their cadence."""

    async def work() -> int:
        async with gateway(settings) as gw:
            checkpoint = await gw.sealer.seal()
            where = gw.sealer.store.where
        if checkpoint is None:
            emit(args, {"checkpoint": None}, "nothing to seal: no record since the last seal")
        else:
            text = f"checkpoint {checkpoint.number} seals seq {checkpoint.seq} (in {where})"
            emit(args, {"checkpoint": checkpoint.document(), "store": where}, text)
        return 0

    return run_async(work)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write every record, with its hashes, and every checkpoint to one file (mode 0600)."""

    async def work() -> int:
        async with gateway(settings) as gw:
            done = await gw.audit_trail.export(args.out, requester=operator())
            gw_store = gw.sealer.store.where
        unsealed = done.records > 0 and done.checkpoints == 0
        document = {"path": str(done.path), "records": done.records,
                    "checkpoints": done.checkpoints, "head_seq": done.head_seq,
                    "no_checkpoint": unsealed}  # fmt: skip
        text = f"wrote {done.records} record(s) and {done.checkpoints} checkpoint(s) to {done.path}"
        if unsealed:
            say(
                f"NO CHECKPOINT: the export holds {done.records} record(s) and no signed "
                f"checkpoint ({gw_store}): verifying it can only show that their hashes agree "
                "with each other (seal the chain first: `ssogw audit seal`)"
            )
        emit(args, document, text)
        return 0

    return run_async(work)


def add_seals(sub: Any) -> None:
    """`ssogw audit seal-key`, `seal` and `export`."""
    key = sub.add_parser("seal-key", help="the public key that verifies the audit checkpoints")
    key.add_argument("--out", type=Path, help="also write the public key (PEM) to this file")
    key.add_argument(
        "--generate", type=Path, metavar="KEYFILE",
        help="make a new signing key in KEYFILE (0600) and KEYFILE.pub, e.g. to rotate the key",
    )  # fmt: skip
    key.add_argument("--json", action="store_true", help="print one JSON document")
    key.set_defaults(handler=cmd_seal_key)
    seal = sub.add_parser("seal", help="seal the audit chain head now")
    seal.add_argument("--json", action="store_true", help="print one JSON document")
    seal.set_defaults(handler=cmd_seal)
    export = sub.add_parser(
        "export", help="every audit record with its hashes, and the checkpoints, in one file"
    )
    export.add_argument("--out", type=Path, required=True, help="the file to write (JSON lines)")
    export.add_argument("--json", action="store_true", help="print one JSON document")
    export.set_defaults(handler=cmd_export)


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
    for add in (add_lookups, add_verify, add_report, add_seals):
        add(sub)
