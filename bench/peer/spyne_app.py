"""The peer in the bench: a spyne 2.14 service doing the gateway's inquiry read, nothing else.

What a Python team would write for the counter's inquiry with the framework SOAP services are
usually built on: spyne's SOAP 1.1 (lxml, schema validation on) and a JSON answer over plain
HTTP for the REST figure, on gunicorn with one sync worker, one psycopg2 connection to the same
replica the gateway reads. It runs the gateway's own member query (``MEMBER_SQL``, handed over by
``bench/run.py`` in ``PEER_MEMBER_SQL``) and returns the person and the months already paid.
No WS-Security, no rate limit, no rules, no audit, no metrics: the ratio to it is a floor for what
the gateway's extra guarantees may cost.

Runs in its own virtualenv (``bench/peer/requirements.txt``) and imports nothing of the project.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

import psycopg2
from spyne import Application, ComplexModel, Integer, ServiceBase, Unicode, rpc
from spyne.model.complex import Array
from spyne.protocol.http import HttpRpc
from spyne.protocol.json import JsonDocument
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication
from spyne.util.wsgi_wrapper import WsgiMounter

NAMESPACE = "urn:sso:peer:v1"
_SQL = os.environ["PEER_MEMBER_SQL"]
_DSN = os.environ["PEER_REPLICA_DSN"]


class Person(ComplexModel):
    __namespace__ = NAMESPACE
    nationalId = Unicode
    title = Unicode
    firstName = Unicode
    lastName = Unicode
    section = Integer
    status = Unicode
    paidMonths = Array(Unicode)


_connection: Any = None


def _cursor() -> Any:
    """One connection per worker process, opened on first use (after gunicorn's fork)."""
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg2.connect(_DSN)
        _connection.set_session(readonly=True, autocommit=True)
    return _connection.cursor()


def _since() -> date:
    """The first day of the gateway's inquiry history window, as ``bench/run.py`` computed it."""
    return date.fromisoformat(os.environ["PEER_SINCE"])


class Inquiry(ServiceBase):
    @rpc(Unicode(min_len=13, max_len=13, pattern="[0-9]{13}"), Unicode, Unicode, _returns=Person)
    def InquireContribution(ctx, nationalId, storeId, terminalId):
        with _cursor() as cur:
            cur.execute(_SQL, {"p1": nationalId, "p2": _since()})
            row = cur.fetchone()
        if row is None:
            return None
        columns = [c.name for c in cur.description]
        found = dict(zip(columns, row, strict=True))
        return Person(
            nationalId=found["national_id"],
            title=found["title"],
            firstName=found["first_name"],
            lastName=found["last_name"],
            section=found["section"],
            status=found["status"],
            paidMonths=[m.isoformat()[:7] for m in found["months"]],
        )


def _app(in_protocol: Any, out_protocol: Any, name: str) -> WsgiApplication:
    return WsgiApplication(
        Application(
            [Inquiry], tns=NAMESPACE, name=name, in_protocol=in_protocol, out_protocol=out_protocol
        )
    )


application = WsgiMounter(
    {
        "soap": _app(Soap11(validator="lxml"), Soap11(), "PeerSoap"),
        "rest": _app(HttpRpc(validator="soft"), JsonDocument(), "PeerRest"),
    }
)
