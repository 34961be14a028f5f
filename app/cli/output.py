"""What a command prints: messages on stderr, then one JSON document or text on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def say(message: str) -> None:
    """A message for the person at the terminal (stderr, so --json output stays clean)."""
    print(message, file=sys.stderr, flush=True)


def emit(args: argparse.Namespace, document: Any, text: str) -> None:
    """Print ``document`` as JSON when --json was given, else ``text``."""
    if getattr(args, "json", False):
        print(json.dumps(document, ensure_ascii=False, default=str))
    else:
        print(text)


def write_text(args: argparse.Namespace, text: str) -> None:
    """Write ``text`` to the file named by --output, else to stdout."""
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        say(f"wrote {args.output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def progress_bar(args: argparse.Namespace, *, total: int | None = None, unit: str = "B") -> Any:
    """A progress bar on stderr (none with --quiet); ``unit`` is scaled (kB, MB) for bytes."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=unit == "B", file=sys.stderr, disable=args.quiet)
