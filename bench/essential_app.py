"""An inquiry's essential work and nothing else: the yardstick beside the gateway's SOAP figure.

``../shared/PERFORMANCE.md`` measured such a service at 40–42 % of the bare endpoint, where the
gateway then made 17 %. This is that service, run by ``make bench`` beside the gateway on the
same host, so that each run says what the essential work alone leaves of the bare endpoint
there (the hosts differ by 2.8× in the bare endpoint's cost a request). It answers the
gateway's own SOAP InquireContribution (the same wrk script, ``lua/soap_inquiry.lua``) and does:

- one plain Starlette route, no dependency injection, no response model;
- the request parsed by lxml (no entities, no DTD, no network), its fields taken by ``find``;
- the WS-Security PasswordDigest checked (SHA-1 over nonce, created and secret; constant time);
- one asyncpg ``fetchrow`` of the gateway's member query (``MEMBER_SQL``) on the replica, from
  a pool of 10 (the gateway's size; ``ESSENTIAL_REPLICA_POOL`` for another), each read a
  statement of its own (the gateway batches concurrent reads into one);
- the record of the lookup (who, which ID, what name) handed to one writer task that COPYs
  the waiting records on the primary and commits (group commit), while the request awaits that
  commit, as the gateway's audit does;
- the answer written with an f-string and escaping, no tree.

It is given what costs nothing to the work and which the gateway has too, so that the
comparison is of the work: pools that release a connection without asyncpg's reset query (a
round trip on every release), the replica sessions' generic plans and no JIT, and the
collector's tuning (everything built at start-up frozen, young collections every 50,000
allocations). Not the gateway's own send path (``ssogw serve`` writes an answer's pieces in one
send); uvicorn's, as the bare endpoint's.

What the gateway does beyond it is its own figure's cost: the nonce ledger (fleet-wide replay
protection), rate limits, the rules (payable months and amounts), the audit's hash chain,
read routing by replay position, metrics and the access log. It reads its settings from the
environment ``bench/essential_service.py`` sets, and imports nothing of the gateway but the
query text it is handed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import hmac
import os
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from xml.sax.saxutils import escape

import asyncpg
from lxml import etree  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_WSSE = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}"
_WSU = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}"
_SSO = "{urn:sso:contribution:v1}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
#: The records' table, made by ``bench/essential_service.py`` as the schema's owner.
TABLE = "essential_lookups"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (at timestamptz NOT NULL, username text NOT NULL,"
    " national_id text NOT NULL, name_returned text)"
)
_COLUMNS = ("at", "username", "national_id", "name_returned")
_FAULT = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    "<soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode>"
    "<faultstring>{}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
)


class GroupCommit:
    """One task that writes every waiting record in one COPY, committed, then wakes their calls."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._queue: asyncio.Queue[tuple[tuple[object, ...], asyncio.Future[None]]]
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def append(self, record: tuple[object, ...]) -> None:
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((record, done))
        await done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            failure: Exception | None = None
            try:
                # COPY outside a transaction block commits as it ends: the records are durable
                # (and on the synchronous standby) once it returns.
                await self._pool.copy_records_to_table(
                    TABLE, records=[r for r, _ in batch], columns=_COLUMNS
                )
            except Exception as exc:  # every call of the batch fails with it
                failure = exc
            for _, done in batch:
                if done.done():
                    continue
                if failure is None:
                    done.set_result(None)
                else:
                    done.set_exception(failure)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Essential:
    """The route's state: the two pools, the writer, the one partner's secret."""

    def __init__(self) -> None:
        self.username = os.environ["ESSENTIAL_USERNAME"]
        self.secret = os.environ["ESSENTIAL_PASSWORD"].encode()
        self.member_sql = os.environ["ESSENTIAL_MEMBER_SQL"]
        self.since = date.fromisoformat(os.environ["ESSENTIAL_SINCE"])
        self.replica: asyncpg.Pool
        self.writer: GroupCommit

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        primary = await asyncpg.create_pool(
            os.environ["ESSENTIAL_PRIMARY_DSN"], min_size=2, max_size=2, reset=_no_reset
        )
        size = int(os.environ.get("ESSENTIAL_REPLICA_POOL", "10"))  # the gateway's, unless said
        self.replica = await asyncpg.create_pool(
            os.environ["ESSENTIAL_REPLICA_DSN"], min_size=size, max_size=size, reset=_no_reset,
            server_settings={"plan_cache_mode": "force_generic_plan", "jit": "off"},
        )  # fmt: skip
        gc.collect()  # as the gateway's server: what start-up built is never walked again
        gc.freeze()
        _, middle, old = gc.get_threshold()
        gc.set_threshold(50_000, middle, old)
        self.writer = GroupCommit(primary)
        try:
            yield
        finally:
            await self.writer.close()
            await self.replica.close()
            await primary.close()

    async def soap(self, request: Request) -> Response:
        try:
            root = etree.fromstring(await request.body(), _PARSER)
        except etree.XMLSyntaxError:
            return _fault("The request is not well-formed XML.")
        token = root.find(f".//{_WSSE}UsernameToken")
        nid = root.findtext(f".//{_SSO}nationalId")
        if token is None or nid is None:
            return _fault("A UsernameToken and a nationalId are needed.")
        if not self._admitted(token):
            return _fault("The security token is not valid.")
        row = await self.replica.fetchrow(self.member_sql, nid, self.since)
        if row is None:
            return _fault("No such person.")
        name = f"{row['first_name']} {row['last_name']}"
        await self.writer.append((datetime.now(UTC), self.username, nid, name))
        months = "".join(f"<sso:month>{m:%Y-%m}</sso:month>" for m in row["months"])
        return Response(
            '<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope'
            ' xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
            ' xmlns:sso="urn:sso:contribution:v1"><soapenv:Body>'
            f"<sso:InquireContributionResponse><sso:nationalId>{escape(nid)}</sso:nationalId>"
            f"<sso:title>{escape(row['title'] or '')}</sso:title>"
            f"<sso:firstName>{escape(row['first_name'])}</sso:firstName>"
            f"<sso:familyName>{escape(row['last_name'])}</sso:familyName>"
            f"<sso:section>{row['section']}</sso:section>"
            f"<sso:status>{escape(row['status'])}</sso:status>"
            f"<sso:paidMonths>{months}</sso:paidMonths>"
            "</sso:InquireContributionResponse></soapenv:Body></soapenv:Envelope>",
            media_type="text/xml; charset=utf-8",
        )

    def _admitted(self, token: etree._Element) -> bool:
        username = token.findtext(f"{_WSSE}Username")
        digest = token.findtext(f"{_WSSE}Password")
        nonce = token.findtext(f"{_WSSE}Nonce")
        created = token.findtext(f"{_WSU}Created")
        if username != self.username or digest is None or nonce is None or created is None:
            return False
        try:
            raw_nonce = base64.b64decode(nonce, validate=True)
        except ValueError:
            return False
        expected = hashlib.sha1(raw_nonce + created.encode() + self.secret).digest()
        return hmac.compare_digest(base64.b64encode(expected), digest.encode())


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """Release a connection as it is (nothing here leaves session state behind)."""


def _fault(text: str) -> Response:
    return Response(_FAULT.format(escape(text)), status_code=500, media_type="text/xml")


async def _ready(_request: Request) -> Response:
    return Response("ok")


def build() -> Starlette:
    essential = Essential()
    return Starlette(
        routes=[
            Route("/soap/v1", essential.soap, methods=["POST"]),
            Route("/ready", _ready),  # served once the lifespan has opened the pools
        ],
        lifespan=essential.lifespan,
    )
