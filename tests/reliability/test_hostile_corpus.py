"""Hostile input against a real gateway process: every input of ``corpus/index.toml`` gets the
clear client error the index names, quickly; slow and oversized-header clients cannot stall it;
afterwards it still serves a normal inquiry and its memory has stayed bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from app.db.local_pair import PairRecord
from tests.reliability.conftest import Launcher, NewPartner, NewPeople, replica_caught_up
from tests.reliability.figures import FIGURES
from tests.reliability.gateway_process import CLIENT_LIMITS, GatewayProcess
from tests.reliability.hostile_inputs import (
    ANSWER_WITHIN_S,
    HostileCase,
    body_of,
    chunks,
    fill,
    load_cases,
    params,
    placeholder_values,
)
from tests.reliability.raw_http import STILL_OPEN, build_request, exchange, stall, trickle
from tests.reliability.soap_wire import (
    CLIENT_FAULTS,
    CT11,
    Partner,
    describe,
    inquire_body,
    read_answer,
    signed,
)

pytestmark = [pytest.mark.reliability, pytest.mark.serial]

SOAP_CASES = load_cases("soap")
HTTP_CASES = load_cases("http")
RSS_GROWTH_LIMIT = 50 * 2**20
SLOW_CLIENTS = 40
SLOW_SECONDS = 3.0
STALL_WAIT_S = 8.0


@pytest.fixture(scope="module")
def gateway(launcher: Launcher) -> Iterator[GatewayProcess]:
    process = launcher.start("corpus")
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture(scope="module")
async def corpus_partner(new_partner: NewPartner) -> Partner:
    return await new_partner()


@pytest.fixture(scope="module")
async def corpus_people(new_people: NewPeople, rel_record: PairRecord) -> Iterator[str]:
    """A fresh unpaid member for each input (none sees another's payment), on the replica."""
    people = await new_people(len(SOAP_CASES) + len(HTTP_CASES) + 10)
    await replica_caught_up(rel_record)
    return iter(people)


@pytest.fixture(scope="module")
def http(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=30, limits=CLIENT_LIMITS) as client:
        yield client


def normal_inquiry_succeeds(
    http: httpx.Client, partner: Partner, nid: str, *, timeout_s: float = 5.0
) -> float:
    """Send an ordinary inquiry; assert it succeeds; return how long it took."""
    started = time.perf_counter()
    response = http.post(
        "/soap/v1",
        content=signed(partner, inquire_body(nid)),
        headers={"content-type": CT11},
        timeout=timeout_s,
    )
    elapsed = time.perf_counter() - started
    answer = read_answer(response)
    assert answer.ok and answer.fields["nationalId"] == nid, answer
    return elapsed


@pytest.fixture(scope="module", autouse=True)
def rss_baseline(
    http: httpx.Client,
    gateway: GatewayProcess,
    corpus_partner: Partner,
    corpus_people: Iterator[str],
) -> int:
    """The server's RSS after a warm-up of ordinary inquiries, before any hostile input."""
    nid = next(corpus_people)
    for _ in range(30):
        normal_inquiry_succeeds(http, corpus_partner, nid)
    FIGURES.rss_before = gateway.rss_bytes()
    return FIGURES.rss_before


@pytest.mark.parametrize("case", params(SOAP_CASES))
def test_soap_hostile_input_gets_its_client_fault(
    http: httpx.Client,
    case: HostileCase,
    corpus_partner: Partner,
    corpus_people: Iterator[str],
) -> None:
    body = body_of(case, placeholder_values(corpus_partner, corpus_people))
    headers = dict(case.headers)
    if case.content_type is not None:
        headers["content-type"] = case.content_type
    content = chunks(body) if case.transfer == "chunked" else body
    started = time.perf_counter()
    response = http.request(case.method, case.path, content=content, headers=headers)
    elapsed = time.perf_counter() - started
    answer = read_answer(response)
    FIGURES.hostile_answer(case.name, "soap", describe(answer))
    expect = case.expect
    assert elapsed < ANSWER_WITHIN_S, f"{case.name} took {elapsed:.2f} s"
    assert answer.status == expect["status"], (case.name, answer)
    if "fault" in expect:
        assert answer.fault in CLIENT_FAULTS and answer.code.startswith("client."), answer
        assert (answer.fault, answer.code) == (expect["fault"], expect["code"]), answer
        if "reason" in expect:
            assert answer.reason == expect["reason"], answer
        assert answer.retryable is False, answer
    else:
        assert answer.element == expect["element"], answer
        assert answer.fields.get("state") == expect["state"], answer


@pytest.mark.parametrize("case", params(HTTP_CASES))
async def test_oversized_http_input_is_refused(
    gateway: GatewayProcess,
    case: HostileCase,
    corpus_partner: Partner,
    corpus_people: Iterator[str],
) -> None:
    values = placeholder_values(corpus_partner, corpus_people)
    headers = [("Content-Type", CT11)]
    headers += [(k, fill(v.encode(), values).decode()) for k, v in case.headers.items()]
    headers += [(f"X-Filler-{i}", "v") for i in range(case.filler_headers)]
    target = fill(case.path.encode(), values).decode()
    request = build_request(case.method, target, headers, body_of(case, values))
    answer = await exchange(gateway.port, request)
    FIGURES.hostile_answer(case.name, "http", answer.describe())
    assert answer.seconds < ANSWER_WITHIN_S, answer
    assert answer.status in case.expect["status"], answer.describe()


async def test_slow_clients_do_not_stall_the_server(
    gateway: GatewayProcess, corpus_partner: Partner, corpus_people: Iterator[str]
) -> None:
    """Slowloris: clients trickle their headers or their body a byte at a time; everyone else
    is served as usual meanwhile, and each slow request, once whole, gets its answer."""
    nid = next(corpus_people)
    interval = 0.1
    slow = []
    for i in range(SLOW_CLIENTS):
        body = signed(corpus_partner, inquire_body(nid))
        request = build_request("POST", "/soap/v1", [("Content-Type", CT11)], body)
        # Even clients trickle the request line and headers, odd ones the body.
        fast = 0 if i % 2 == 0 else request.index(b"\r\n\r\n") + 4
        slow.append(
            asyncio.create_task(
                trickle(
                    gateway.port,
                    request,
                    fast_bytes=fast,
                    slow_bytes=int(SLOW_SECONDS / interval),
                    interval_s=interval,
                )
            )
        )
    latencies = []
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=5) as client:
        deadline = time.monotonic() + SLOW_SECONDS
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = await client.post(
                "/soap/v1",
                content=signed(corpus_partner, inquire_body(nid)),
                headers={"content-type": CT11},
            )
            latencies.append(time.perf_counter() - started)
            assert read_answer(response).ok
            await asyncio.sleep(0.05)
    answers = await asyncio.gather(*slow)
    FIGURES.hostile_answer(
        f"slowloris_{SLOW_CLIENTS}_clients",
        "http",
        f"others served meanwhile ({len(latencies)} inquiries, slowest "
        f"{max(latencies) * 1000:.0f} ms); slow requests answered "
        f"{sorted({str(a.status) for a in answers})}",
    )
    assert max(latencies) < 1.0, latencies
    for answer in answers:
        assert answer.status == 200 and b"InquireContributionResponse" in answer.body, answer


async def test_a_stalled_request_is_cut_off(
    gateway: GatewayProcess, corpus_partner: Partner, corpus_people: Iterator[str]
) -> None:
    body = signed(corpus_partner, inquire_body(next(corpus_people)))
    request = build_request("POST", "/soap/v1", [("Content-Type", CT11)], body)
    answer = await stall(gateway.port, request, send_bytes=len(request) - 40, wait_s=STALL_WAIT_S)
    FIGURES.hostile_answer("stalled_request", "http", answer.describe())
    assert answer.head != STILL_OPEN, answer.describe()


async def test_still_serving_and_memory_bounded_after_the_corpus(
    gateway: GatewayProcess,
    corpus_partner: Partner,
    corpus_people: Iterator[str],
    rss_baseline: int,
) -> None:
    assert gateway.running()
    with httpx.Client(base_url=gateway.base_url, timeout=10) as http:
        elapsed = normal_inquiry_succeeds(http, corpus_partner, next(corpus_people))
    assert elapsed < 1.0
    FIGURES.rss_after = gateway.rss_bytes()
    growth = FIGURES.rss_after - rss_baseline
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.1f} MiB"
