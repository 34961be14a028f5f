"""Slow and greedy connections against a real `ssogw serve` process: 5,000 sockets from one
address that send a byte of a request or nothing at all do not stop another address's
inquiries; a client that sends its headers, or its body, too slowly is cut off after the
timeout, told so where it can be, counted and logged once per address.

The gateway runs with a descriptor limit of 1,024 (``ulimit -n``), as a small container might:
without a cap per address, the first thousand idle sockets would take every descriptor and
nobody else could connect, as in the issue (21,000 idle connections reset everyone for 36 s).
Other addresses are loopback aliases (127.0.0.2 and on: all of 127/8 is loopback on Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Iterator

import httpx
import pytest

from app.db.local_pair import PairRecord
from tests.reliability.conftest import Launcher, NewPartner, NewPeople, replica_caught_up
from tests.reliability.figures import FIGURES
from tests.reliability.gateway_process import GatewayProcess
from tests.reliability.observe import scrape
from tests.reliability.raw_http import RawAnswer, build_request, read_answer
from tests.reliability.slow_sockets import slow_sockets
from tests.reliability.soap_wire import CT11, Partner, inquire_body, signed
from tests.reliability.soap_wire import read_answer as soap_answer

pytestmark = [pytest.mark.reliability, pytest.mark.serial]

SLOW_SOCKETS = 5_000
PER_ADDRESS = 256
HEADER_TIMEOUT_S = 2.0
BODY_TIMEOUT_S = 1.5
CUT = "ssogw_http_connections_cut_total"
OPEN = "ssogw_http_connections_open{}"


@pytest.fixture(scope="module")
def gateway(launcher: Launcher) -> Iterator[GatewayProcess]:
    process = launcher.start(
        "slow-connections",
        max_open_files=1024,
        http_max_connections="700",
        http_max_connections_per_address=str(PER_ADDRESS),
        http_header_timeout_s=str(HEADER_TIMEOUT_S),
        http_body_timeout_s=str(BODY_TIMEOUT_S),
        http_keepalive_timeout_s="1",
        soap_read_timeout_s="30",  # the connection's own body bound answers first
        log_level="WARNING",
    )
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture(scope="module")
async def slow_partner(new_partner: NewPartner) -> Partner:
    return await new_partner()


@pytest.fixture(scope="module")
async def nid(new_people: NewPeople, rel_record: PairRecord) -> str:
    (person,) = await new_people(1)
    await replica_caught_up(rel_record)
    return person


def from_address(gateway: GatewayProcess, address: str) -> httpx.AsyncClient:
    """A client calling from ``address``, on a new connection for every request (as counters
    behind a NAT do), so that nothing rides on a connection made before an attack."""
    return httpx.AsyncClient(
        base_url=gateway.base_url,
        timeout=10,
        transport=httpx.AsyncHTTPTransport(local_address=address),
        headers={"connection": "close"},
    )


def cut_lines(gateway: GatewayProcess, address: str) -> list[dict[str, object]]:
    """The gateway's log lines about connections cut from ``address``."""
    lines = []
    for text in gateway.log_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(text)
            if (
                entry.get("logger", "").endswith("connection_guard")
                and entry.get("address") == address
            ):
                lines.append(entry)
    return lines


async def test_slow_sockets_from_one_address_leave_the_others_served(
    gateway: GatewayProcess, slow_partner: Partner, nid: str
) -> None:
    async with from_address(gateway, "127.0.0.2") as others:
        before = await scrape(others)
        latencies: list[float] = []
        open_at_server: list[float] = []
        stop = asyncio.Event()

        async def inquiries() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                response = await others.post(
                    "/soap/v1",
                    content=signed(slow_partner, inquire_body(nid)),
                    headers={"content-type": CT11},
                )
                latencies.append(time.perf_counter() - started)
                assert soap_answer(response).ok
                open_at_server.append((await scrape(others))[OPEN])
                await asyncio.sleep(0.05)

        serving = asyncio.create_task(inquiries())
        await asyncio.sleep(0.5)
        async with slow_sockets(gateway.port, SLOW_SOCKETS, "127.0.0.1", hold_s=30) as opened:
            await asyncio.sleep(HEADER_TIMEOUT_S + 1.0)  # the ones kept are cut by now
            stop.set()
            await serving
            after = await scrape(others)

    def cuts(reason: str) -> float:
        name = f'{CUT}{{reason="{reason}"}}'
        return after.get(name, 0.0) - before.get(name, 0.0)

    ms = sorted(s * 1000 for s in latencies)
    FIGURES.note(
        f"{SLOW_SOCKETS} slow sockets from one address (opened in {opened['seconds']:.1f} s):"
        f" at most {max(open_at_server):.0f} open at the server, {cuts('address_cap'):.0f}"
        f" refused (address_cap), {cuts('header_timeout'):.0f} cut (header_timeout); another"
        f" address meanwhile: {len(ms)} inquiries, p50 {statistics.median(ms):.0f} ms,"
        f" max {ms[-1]:.0f} ms"
    )
    assert max(open_at_server) <= PER_ADDRESS + 5  # the few of the other address besides
    # Each one refused when accepted, or kept until the header timeout and cut then.
    assert cuts("address_cap") + cuts("header_timeout") >= SLOW_SOCKETS - 5
    assert cuts("header_timeout") >= PER_ADDRESS - 5
    assert len(ms) >= 20 and statistics.median(ms) < 100 and ms[-1] < 1500, ms
    assert after[OPEN] <= 5
    # Thousands of cuts, one log line for the address in the interval.
    assert len(cut_lines(gateway, "127.0.0.1")) == 1


async def trickle_until_cut(
    address: str, port: int, request: bytes, *, every_s: float, fast_bytes: int = 0
) -> tuple[RawAnswer, float]:
    """Send the first ``fast_bytes`` of ``request`` at once, then a byte every ``every_s``
    until the server answers or closes; the answer and how long after the last fast byte."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
    started = time.monotonic()
    try:
        answer = asyncio.create_task(read_answer(reader, started))
        with contextlib.suppress(ConnectionError):
            writer.write(request[:fast_bytes])
            for i in range(fast_bytes, len(request)):
                if answer.done():
                    break
                writer.write(request[i : i + 1])
                await writer.drain()
                await asyncio.sleep(every_s)
        result = await asyncio.wait_for(answer, 30)
        return result, time.monotonic() - started
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_a_slow_header_sender_is_cut_off_after_the_header_timeout(
    gateway: GatewayProcess,
) -> None:
    request = build_request("GET", "/livez", [("X-Padding", "x" * 200)], b"")
    answer, seconds = await trickle_until_cut("127.0.0.3", gateway.port, request, every_s=0.05)
    FIGURES.note(f"slow headers: cut after {seconds:.2f} s ({answer.describe()})")
    assert answer.status == 408, answer.describe()
    assert HEADER_TIMEOUT_S - 0.1 < seconds < HEADER_TIMEOUT_S + 1.0
    (line,) = cut_lines(gateway, "127.0.0.3")
    assert line["reason"] == "header_timeout"


async def test_a_slow_body_sender_is_cut_off_and_told_in_its_protocol(
    gateway: GatewayProcess, slow_partner: Partner, nid: str
) -> None:
    body = b'{"nationalId": "' + b"1" * 2000 + b'"}'
    rest = build_request("POST", "/api/v1/insured", [("Content-Type", "application/json")], body)
    head = rest.index(b"\r\n\r\n") + 4
    soap = build_request(
        "POST", "/soap/v1", [("Content-Type", CT11)], signed(slow_partner, inquire_body(nid))
    )
    soap_head = soap.index(b"\r\n\r\n") + 4

    # The headers at once, then the body at 20 bytes a second.
    (rest_answer, rest_s), (soap_answer_, soap_s) = await asyncio.gather(
        trickle_until_cut("127.0.0.4", gateway.port, rest, every_s=0.05, fast_bytes=head),
        trickle_until_cut("127.0.0.5", gateway.port, soap, every_s=0.05, fast_bytes=soap_head),
    )
    FIGURES.note(
        f"slow bodies: REST cut after {rest_s:.2f} s ({rest_answer.describe()}),"
        f" SOAP after {soap_s:.2f} s ({soap_answer_.describe()})"
    )
    assert rest_answer.status == 422 and b"client.invalid_input" in rest_answer.body
    assert b"did not arrive in time" in rest_answer.body
    assert soap_answer_.status == 500 and b"client.invalid_envelope" in soap_answer_.body
    assert b"soap:Client" in soap_answer_.body
    for seconds in (rest_s, soap_s):
        assert BODY_TIMEOUT_S - 0.1 < seconds < BODY_TIMEOUT_S + 1.0, seconds
    for address in ("127.0.0.4", "127.0.0.5"):
        (line,) = cut_lines(gateway, address)
        assert line["reason"] == "body_timeout"


async def test_a_body_that_keeps_the_pace_is_read_whole(gateway: GatewayProcess) -> None:
    """2,000 bytes a second for three seconds, twice the grace: never cut (1,024 a second
    buys another second each)."""
    body = b'{"x": "' + b"y" * 5_990 + b'"}'
    request = build_request("POST", "/api/v1/insured", [("Content-Type", "application/json")], body)
    head = request.index(b"\r\n\r\n") + 4
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", gateway.port, local_addr=("127.0.0.6", 0)
    )
    try:
        writer.write(request[:head])
        for i in range(head, len(request), 200):
            writer.write(request[i : i + 200])
            await writer.drain()
            await asyncio.sleep(0.1)
        answer = await read_answer(reader, started)
    finally:
        writer.close()
    assert answer.seconds > 2 * BODY_TIMEOUT_S
    assert answer.status == 401, answer.describe()  # read whole, then: who is calling?
    assert cut_lines(gateway, "127.0.0.6") == []


async def test_an_idle_kept_alive_connection_is_closed(gateway: GatewayProcess) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", gateway.port, local_addr=("127.0.0.7", 0)
    )
    try:
        writer.write(build_request("GET", "/livez", [], b""))
        await writer.drain()
        assert (await read_answer(reader, time.monotonic())).status == 200
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        assert 0.8 < time.monotonic() - started < 2.0
    finally:
        writer.close()
