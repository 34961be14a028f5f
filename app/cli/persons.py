"""`ssogw import persons`: load a source-system extract of insured persons (fixed-width TIS-620)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, BinaryIO

from app.cli.output import emit, progress_bar
from app.cli.session import gateway, run_async
from app.settings import Settings


def cmd_import_persons(args: argparse.Namespace, settings: Settings) -> int:
    """Load a source-system extract of insured persons."""
    path = Path(args.file)
    size = path.stat().st_size

    async def work(source: BinaryIO) -> int:
        async with gateway(settings) as gw:
            with progress_bar(args, total=size) as bar:
                result = await gw.person_import.import_extract(
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


def register(subparsers: Any) -> None:
    """Add `import` to the `ssogw` parser."""
    group = subparsers.add_parser("import", help="bulk imports from the source system")
    ia = group.add_subparsers(dest="what", required=True, metavar="WHAT")
    persons = ia.add_parser("persons", help="load a fixed-width TIS-620 extract of insured persons")
    persons.add_argument("file", help="the extract (layout: docs/formats.md)")
    persons.add_argument("--format", required=True, choices=("s39", "s40"), help="which extract")
    persons.add_argument("--quiet", action="store_true", help="no progress bar")
    persons.add_argument("--json", action="store_true", help="print one JSON document")
    persons.set_defaults(handler=cmd_import_persons)
