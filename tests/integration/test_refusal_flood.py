"""Callers never admitted cannot drown a person's history: their refusals are counted per source
and window and written as a few records, bounded per source, and the access report lists every
entry of the period.
"""

from __future__ import annotations

import ipaddress
import random
import time
import uuid
from datetime import time as time_of_day
from typing import Any

import pytest

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.audit.admin_gate import AUDIT_SCOPE, AdminGate, Admitted
from app.audit.refusals.tally import OVERFLOW_OPERATION, RefusalTally
from app.counter.records import InquiryRequest
from app.errors import Unauthenticated
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import s40_person
from tests.support.people import new_national_id
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db
FLOOD = 10_000


def documentation_address(rng: random.Random) -> str:
    """An address of 2001:db8::/32 (documentation) no partner allows, new for each test."""
    return str(ipaddress.IPv6Address((0x2001_0DB8 << 96) | rng.getrandbits(96)))


def soap_caller(ip: str) -> Caller:
    return Caller(Protocol.SOAP, ip, uuid.uuid4().hex, terminal="T-01")


async def test_a_flood_of_refused_calls_leaves_every_real_lookup_in_the_report(
    gateway: Gateway, partner: PartnerCredentials, clock: PinnedClock
) -> None:
    person = await s40_person(gateway)
    start = clock()

    async def lookup() -> None:
        token = digest_token(partner.username, partner.password)
        await gateway.counter.inquire(
            caller=soap_caller("127.0.0.1"), credentials=token, request=InquiryRequest(person)
        )

    await lookup()
    flooder = documentation_address(random.Random(uuid.uuid4().int))
    began = time.monotonic()
    for _ in range(FLOOD):  # a stranger claiming to be the partner, from outside its allowlist
        with pytest.raises(Unauthenticated):  # one answer for every admission failure
            await gateway.counter.inquire(
                caller=soap_caller(flooder), request=InquiryRequest(person),
                credentials=digest_token(partner.username, "guessed"),
            )  # fmt: skip
    assert time.monotonic() - began < 60, "the flood is answered at once"
    await lookup()
    await gateway.refusals.flush(everything=True)

    report = await gateway.access_report_builder.build(person, start)
    lines = [(e.operation, e.outcome, e.calls) for e in report.entries]
    real = [e for e in report.entries if e.outcome == "ok"]
    flood = [e for e in report.entries if e.outcome == "client.unauthenticated"]
    assert len(real) == 2 and real[0].at < real[1].at, lines
    assert sum(e.calls for e in flood) == FLOOD, lines
    # One line per window (0.2 s in the tests' settings) that saw the flood, not one per call.
    windows = 1 + int((time.monotonic() - began) / gateway.settings.audit_refusal_window_s)
    assert len(flood) <= windows + 1, lines
    assert all(e.source_ip == flooder and e.refused and e.note is not None for e in flood)
    assert report.entries[0] == real[0] and report.entries[-1] == real[1]
    assert flood[0].note is not None and flood[0].note.en.startswith(
        f"{flood[0].calls} refused calls from {flooder} naming this ID between"
    )
    # The counted lines say who was claimed: the partner whose username was given.
    assert {e.who for e in flood} == {real[0].who}


WINDOW_START = time_of_day(10, 0, 1)  # a second into a minute's window (window_s=60 below)


def _tally(gateway: Gateway, clock: PinnedClock, **bounds: Any) -> tuple[RefusalTally, AdminGate]:
    tally = RefusalTally(sink=gateway.audit, clock=clock, window_s=60, **bounds)
    gate = AdminGate(admission=gateway.admission, audit=tally,
                     prefixes=gateway.settings.prefixes(), events=gateway.metrics,
                     clock=clock)  # fmt: skip
    return tally, gate


async def _refused(gate: AdminGate, caller: Caller, national_id: str) -> None:
    async def body(_call: Admitted) -> None:
        raise AssertionError("never admitted")

    with pytest.raises(Unauthenticated):
        await gate.audited(
            caller=caller, credentials=BearerToken("ssogw_nobody_guessed"),
            operation="AccessReport", scope=AUDIT_SCOPE, body=body, national_id=national_id,
        )  # fmt: skip


async def _rows(gateway: Gateway, sql: str, *args: object) -> list[dict[str, Any]]:
    return [dict(r) for r in await gateway.db.primary.fetch(sql, *args)]


async def test_one_source_naming_many_ids_is_bounded_then_one_overflow_record(
    gateway: Gateway, clock: PinnedClock
) -> None:
    tally, gate = _tally(gateway, clock, per_source=20, sources=10)
    source = documentation_address(random.Random(uuid.uuid4().int))
    ids = [new_national_id() for _ in range(500)]
    # A second call with the first ID, at once (before the failure throttle answers for this
    # source and name, with a reason of its own, so a count of its own).
    with clock.at(WINDOW_START):  # all in one window, whatever the wall clock's second
        await _refused(gate, soap_caller(source), ids[0])
        for nid in ids:
            await _refused(gate, soap_caller(source), nid)
    assert await tally.flush(everything=True) == 21
    rows = await _rows(
        gateway,
        "SELECT operation, outcome, national_id, detail FROM audit_log"
        " WHERE source_ip = $1::inet ORDER BY seq",
        source,
    )
    counted = [r for r in rows if r["operation"] == "AccessReport"]
    [overflow] = [r for r in rows if r["operation"] == OVERFLOW_OPERATION]
    assert len(rows) == 21 and [r["national_id"] for r in counted] == ids[:20]
    assert [r["detail"]["calls"] for r in counted] == [2] + [1] * 19
    assert all(r["outcome"] == "client.unauthenticated" for r in counted)
    assert overflow["national_id"] is None and overflow["detail"]["overflow"] == "source"
    assert overflow["detail"]["calls"] == 480
    assert overflow["detail"]["outcomes"] == {"client.unauthenticated": 480}
    assert sum(r["detail"]["calls"] for r in rows) == 501, "every call counted once"


async def test_sources_beyond_the_bound_share_one_overflow_record_without_address(
    gateway: Gateway, clock: PinnedClock
) -> None:
    tally, gate = _tally(gateway, clock, per_source=5, sources=3)
    rng = random.Random(uuid.uuid4().int)
    sources = [documentation_address(rng) for _ in range(8)]
    nid = new_national_id()
    first_overflowed = soap_caller(sources[3])
    with clock.at(WINDOW_START):  # all in one window, whatever the wall clock's second
        for index, source in enumerate(sources):
            caller = first_overflowed if index == 3 else soap_caller(source)
            await _refused(gate, caller, nid)
    assert await tally.flush(everything=True) == 4
    counted = await _rows(
        gateway, "SELECT host(source_ip) AS ip FROM audit_log WHERE national_id = $1", nid
    )
    assert sorted(r["ip"] for r in counted) == sorted(sources[:3])
    [overflow] = await _rows(
        gateway, "SELECT source_ip, national_id, operation, detail FROM audit_log"
        " WHERE request_id = $1", first_overflowed.request_id,
    )  # fmt: skip
    assert (overflow["source_ip"], overflow["national_id"]) == (None, None)
    assert overflow["operation"] == OVERFLOW_OPERATION
    assert (overflow["detail"]["overflow"], overflow["detail"]["calls"]) == ("sources", 5)
