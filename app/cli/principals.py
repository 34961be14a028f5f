"""`ssogw partner …`, `ssogw client …` and `ssogw demo`: managing who may call the gateway.

The commands work on the gateway's own ``Registry`` (from ``app.main``), opened for the command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any

import asyncpg

from app.cli.output import emit, say
from app.cli.seed import cmd_seed
from app.cli.session import gateway, primary_dsn, run_async
from app.errors import AlreadyExists
from app.principals.registry import (
    ALL_OPERATIONS,
    CLIENT_RATE_LIMIT,
    INTERNAL_NETWORKS,
    Registry,
)
from app.settings import Settings

# Clearly marked demo credentials, used only by `make run` on a local pair.
DEMO_PARTNER = "demo-counter"
DEMO_PASSWORD = "demo-password-not-a-secret"  # noqa: S105
DEMO_CLIENT = "demo-backoffice"
DEMO_TOKEN = "ssogw_demo_demo-token-not-a-secret"  # noqa: S105


def _run(settings: Settings, work: Callable[[Registry], Coroutine[Any, Any, int]]) -> int:
    async def main() -> int:
        async with gateway(settings) as gw:
            return await work(gw.registry)

    return run_async(main)


def cmd_partner(args: argparse.Namespace, settings: Settings) -> int:
    """Add, list, disable, enable or rotate a partner."""

    async def work(reg: Registry) -> int:
        if args.action == "add":
            ops = [o.strip() for o in args.operations.split(",")] if args.operations else None
            issued = await reg.add_partner(
                name=args.name,
                cidrs=args.cidr or [],
                operations=ops,
                rate_limit=args.rate_limit,
                display_name=args.display_name,
                password_text_ok=args.allow_password_text,
            )
            emit(
                args,
                {
                    "partner": issued.partner,
                    "username": issued.username,
                    "password": issued.password,
                },
                f"partner {issued.partner['name']} created\n"
                f"username: {issued.username}\npassword: {issued.password}\n"
                "(the password is shown once; store it now)",
            )
        elif args.action == "list":
            partners = await reg.list_partners()
            emit(
                args,
                {"partners": partners},
                "\n".join(
                    f"{p['name']:<24} {p['status']:<9} {','.join(p['cidrs']):<32}"
                    f" {p['rateLimit']:>8g}/s  {','.join(p['operations'])}"
                    for p in partners
                )
                or "no partners",
            )
        elif args.action in ("disable", "enable"):
            view = await reg.set_partner_status(args.name, active=args.action == "enable")
            emit(args, {"partner": view}, f"partner {args.name} is now {view['status']}")
        else:
            issued = await reg.rotate_partner(args.name)
            emit(
                args,
                {
                    "partner": issued.partner,
                    "username": issued.username,
                    "password": issued.password,
                },
                f"new password for {issued.username}: {issued.password} (shown once)",
            )
        return 0

    return _run(settings, work)


def cmd_client(args: argparse.Namespace, settings: Settings) -> int:
    """Add, list, disable, enable or rotate an internal client."""

    async def work(reg: Registry) -> int:
        if args.action == "add":
            issued = await reg.add_client(
                name=args.name,
                scopes=args.scopes.split(","),
                cidrs=args.cidr,
                rate_limit=args.rate_limit,
            )
            emit(
                args,
                {"client": issued.client, "token": issued.token},
                f"client {issued.client['name']} created\ntoken: {issued.token}\n"
                "(the token is shown once; store it now)",
            )
        elif args.action == "list":
            clients = await reg.list_clients()
            emit(
                args,
                {"clients": clients},
                "\n".join(
                    f"{c['name']:<24} {c['status']:<9} {','.join(c['cidrs']):<32}"
                    f" {c['rateLimit']:>8g}/s  {','.join(c['scopes'])}"
                    for c in clients
                )
                or "no clients",
            )
        elif args.action in ("disable", "enable"):
            view = await reg.set_client_status(args.name, active=args.action == "enable")
            emit(args, {"client": view}, f"client {args.name} is now {view['status']}")
        else:
            issued = await reg.rotate_client(args.name)
            emit(
                args,
                {"client": issued.client, "token": issued.token},
                f"new token for {args.name}: {issued.token} (shown once)",
            )
        return 0

    return _run(settings, work)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Seed demo persons on an empty database and register the demo partner and client."""

    async def persons() -> int:
        conn = await asyncpg.connect(primary_dsn(settings))
        try:
            count: int = await conn.fetchval("SELECT count(*) FROM insured_persons")
            return count
        finally:
            await conn.close()

    if run_async(persons) == 0:
        seed_args = argparse.Namespace(
            persons=args.persons, seed=1, as_of=None, quiet=False, json=False, workers=2
        )
        cmd_seed(seed_args, settings)

    async def work(reg: Registry) -> int:
        with suppress(AlreadyExists):
            await reg.add_partner(
                name=DEMO_PARTNER,
                cidrs=["127.0.0.0/8", "::1/128"],
                display_name="Demo convenience store (local only)",
                password=DEMO_PASSWORD,
                rate_limit=1000,
                password_text_ok=True,
            )
        with suppress(AlreadyExists):
            await reg.add_client(
                name=DEMO_CLIENT, scopes=["counter", "admin", "audit"], token=DEMO_TOKEN
            )
        return 0

    _run(settings, work)
    host, port = settings.http_host, settings.http_port
    say(
        "\n".join(
            [
                "",
                f"SSO Contribution Gateway on http://{host}:{port}",
                f"  REST docs  http://{host}:{port}/docs   (Authorize: {DEMO_TOKEN})",
                f"  SOAP       http://{host}:{port}/soap/v1   WSDL: /soap/v1?wsdl",
                f"  metrics    http://{host}:{port}/metrics   health: /livez /readyz",
                f"  demo partner (WS-Security UsernameToken): {DEMO_PARTNER} / {DEMO_PASSWORD}",
                "  these are demo credentials for this local machine only",
                "",
            ]
        )
    )
    return 0


def register(sub: Any) -> None:
    """Add the partner, client and demo commands to the `ssogw` parser."""
    partner = sub.add_parser("partner", help="partners (counter networks): add, list, ...")
    pa = partner.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = pa.add_parser("add", help="register a partner; prints its password once")
    add.add_argument("name")
    add.add_argument(
        "--cidr", action="append", required=True, help="allowed source block, repeatable"
    )
    add.add_argument(
        "--operations", help=f"comma-separated, of {','.join(sorted(ALL_OPERATIONS))} (default all)"
    )
    add.add_argument(
        "--rate-limit",
        type=float,
        default=50.0,
        help="requests/s, for the whole fleet (default 50)",
    )
    add.add_argument("--display-name", help="name shown in reports")
    add.add_argument(
        "--allow-password-text", action="store_true", help="also accept WS-Security PasswordText"
    )
    for action, text in (
        ("list", "list partners"),
        ("disable", "refuse a partner's calls"),
        ("enable", "admit a disabled partner again"),
        ("rotate", "issue a new password; the old one stops working"),
    ):
        p = pa.add_parser(action, help=text)
        if action != "list":
            p.add_argument("name")
    for p in pa.choices.values():
        p.add_argument("--json", action="store_true", help="print one JSON document")
    partner.set_defaults(handler=cmd_partner)

    client = sub.add_parser("client", help="SSO's internal REST clients: add, list, ...")
    ca = client.add_subparsers(dest="action", required=True, metavar="ACTION")
    cadd = ca.add_parser("add", help="register a client; prints its bearer token once")
    cadd.add_argument("name")
    cadd.add_argument("--scopes", required=True, help="comma-separated: counter,admin,audit")
    cadd.add_argument(
        "--cidr",
        action="append",
        help="allowed source block, repeatable (default: loopback and the private networks"
        f" {', '.join(INTERNAL_NETWORKS[1:4])}, fc00::/7)",
    )
    cadd.add_argument(
        "--rate-limit",
        type=float,
        help=f"requests/s, for the whole fleet (default {CLIENT_RATE_LIMIT:g})",
    )
    for action, text in (
        ("list", "list clients"),
        ("disable", "refuse a client's calls"),
        ("enable", "admit a disabled client again"),
        ("rotate", "issue a new token; the old one stops working"),
    ):
        p = ca.add_parser(action, help=text)
        if action != "list":
            p.add_argument("name")
    for p in ca.choices.values():
        p.add_argument("--json", action="store_true", help="print one JSON document")
    client.set_defaults(handler=cmd_client)

    demo = sub.add_parser("demo", help="demo data and the demo partner, if missing (make run)")
    demo.add_argument("--persons", type=int, default=200_000)
    demo.set_defaults(handler=cmd_demo)
