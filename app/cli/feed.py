"""`ssogw feed export`: a partner's feed of insured persons, written with its manifest.

The export leaves one audit record naming the operator, committed before the file is complete;
a file whose export failed is removed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from app.cli.output import emit, progress_bar
from app.cli.session import gateway, operator, run_async
from app.feed.service import FeedManifest
from app.settings import Settings


def _manifest_text(path: Path, manifest: FeedManifest) -> str:
    return (
        f"{path}: {manifest.row_count} row(s), {manifest.byte_count} bytes, {manifest.file_format}"
        f" for partner {manifest.partner}\nsha256 {manifest.sha256}\n"
        f"scope {','.join(manifest.scope)}; amounts of {manifest.amount_month}"
    )


def cmd_feed(args: argparse.Namespace, settings: Settings) -> int:
    """Write a partner's feed and its manifest; one audit record for the export."""
    target = Path(args.output)
    partial = target.with_name(target.name + ".part")

    async def work() -> FeedManifest:
        async with gateway(settings) as gw:
            with partial.open("wb") as out, progress_bar(args) as bar:
                return await gw.feed_exports.export(
                    out.write, partner=args.partner, requester=operator(), section=args.section,
                    file_format=args.format, progress=bar.update,
                )  # fmt: skip

    try:
        manifest = run_async(work)
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


def register(subparsers: Any) -> None:
    """Add `ssogw feed` to the `ssogw` parser."""
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
