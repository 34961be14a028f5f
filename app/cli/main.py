"""The `ssogw` command: every operator task, from the local database pair to audit queries.

Commands that create or report take ``--json`` and then print exactly one JSON document on
stdout; progress and messages go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, Final, Protocol

import asyncpg
from pydantic import ValidationError

from app.cli import (
    audit,
    complaints,
    db,
    feed,
    persons,
    principals,
    refunds,
    seed,
    serve,
    settlement,
)
from app.cli.output import say
from app.errors import ClientError, ServiceError
from app.settings import Settings


class CommandGroup(Protocol):
    """A module of commands: it adds them to the `ssogw` parser."""

    def register(self, subparsers: Any) -> None:
        """Add this group's commands to ``subparsers``."""


#: The command groups, in the order `ssogw --help` lists them; each has ``register(subparsers)``.
COMMAND_GROUPS: Final[tuple[CommandGroup, ...]] = (
    serve,  # serve
    db,  # db, migrate
    seed,  # seed
    principals,  # partner, client, demo
    audit,  # audit lookups|verify|report
    settlement,  # settlement import|report|export
    persons,  # import persons
    refunds,  # refunds list
    feed,  # feed export
    complaints,  # complaints list
)


def build_parser() -> argparse.ArgumentParser:
    """The `ssogw` parser with every command group."""
    parser = argparse.ArgumentParser(prog="ssogw", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ssogw` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:  # one line a setting, named as it is set
        for error in exc.errors():
            name = "SSOGW_" + "_".join(str(part) for part in error["loc"]).upper()
            say(f"error: {name}: {error['msg']}")
        return 2
    try:
        code: int = args.handler(args, settings)
    except ServiceError as exc:
        say(f"error: {exc.code}: {exc.message}")
        if exc.details:
            say(json.dumps(exc.details, ensure_ascii=False, default=str))
        # 2: the request itself was refused (client.*); 1: it could not be carried out now.
        return 2 if isinstance(exc, ClientError) else 1
    except (RuntimeError, OSError, asyncpg.PostgresError) as exc:
        say(f"error: {exc}")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
