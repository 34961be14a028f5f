"""The SOAP adapter's own CPU for one inquiry, without HTTP or a database: µs per call.

    .venv/bin/python -m bench.soap_codec [--calls 5000]

Reads the request the wrk script sends (a WS-Security UsernameToken with PasswordDigest and a
nationalId, storeId and terminalId) and writes an answer with ten payable months, the way
``app/soap/router.py`` does: guarded parse into the envelope, operation, request fields and
token; then the answer through the one writer (``app/soap/serialise.py``), inside its envelope.
Best of five rounds, so a busy machine shows less.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime

from app.counter.records import InquiryResult, PayableMonth
from app.db.read_meta import ReadPath
from app.domain.calendar import BANGKOK
from app.soap.deserialise import read_inquiry
from app.soap.envelope import read_envelope
from app.soap.media_type import read_media_type
from app.soap.operations import operation_of
from app.soap.serialise import inquiry_response, write_envelope
from app.soap.versions import SoapVersion
from app.soap.wsse import read_username_token
from app.soap.xml_reader import XmlLimits

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
BASE64 = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
REQUEST = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:sso="urn:sso:contribution:v1"><soapenv:Header>'
    f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
    "<wsse:Username>bench-partner</wsse:Username>"
    f'<wsse:Password Type="{PROFILE}#PasswordDigest">qL2aSmRL6cJ3w5r2Xo2J1pE1d0s=</wsse:Password>'
    f'<wsse:Nonce EncodingType="{BASE64}">AAAAAAAAAAEAAAAAAAAAKg==</wsse:Nonce>'
    "<wsu:Created>2026-11-26T06:00:00Z</wsu:Created></wsse:UsernameToken></wsse:Security>"
    "</soapenv:Header><soapenv:Body><sso:InquireContribution>"
    "<sso:nationalId>3100600445635</sso:nationalId><sso:storeId>S-0001</sso:storeId>"
    "<sso:terminalId>T-01</sso:terminalId></sso:InquireContribution></soapenv:Body>"
    "</soapenv:Envelope>"
).encode()
RESULT = InquiryResult(
    national_id="3100600445635",
    title="นาง",
    first_name="สมหญิง",
    family_name="ใจดี",
    section=40,
    status="active",
    status_reason=None,
    ended_month=None,
    option=2,
    months=tuple(
        PayableMonth(f"2026-{m:02d}", 10_000, date(2026, m, 15) if m > 3 else None, m < 6, 5_000)
        for m in range(1, 11)
    ),
    default_months=("2026-10",),
    default_total_satang=10_000,
    savings_allowed=True,
    max_savings_per_month_satang=100_000,
    as_of=datetime(2026, 11, 26, 13, 0, tzinfo=BANGKOK),
    served_by=ReadPath.REPLICA,
    payment_period="202610",
    payment_method="counter",
    last_payment_date=date(2026, 10, 3),
    last_payment_satang=10_000,
    amount_due_satang=10_000,
)
LIMITS = XmlLimits(max_body_bytes=64 * 1024, max_depth=32, max_elements=2_000)
MEDIA = read_media_type("text/xml; charset=utf-8")


async def _body() -> AsyncIterator[bytes]:
    yield REQUEST


async def read_request() -> None:
    envelope = await read_envelope(
        _body(), media=MEDIA, limits=LIMITS, declared_length=len(REQUEST)
    )
    operation_of(envelope)
    read_inquiry(envelope.payload)
    read_username_token(envelope)


def best_us(step: Callable[[], object], calls: int) -> float:
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            step()
        rounds.append((time.perf_counter() - started) / calls * 1e6)
    return min(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000)
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    figures = {
        "read the request (guarded parse, envelope, fields, token)": best_us(
            lambda: loop.run_until_complete(read_request()), args.calls
        ),
        "write the answer (the one writer, as served)": best_us(
            lambda: write_envelope(SoapVersion.V11, inquiry_response(RESULT)), args.calls
        ),
    }
    loop.close()
    for what, us in figures.items():
        print(f"{us:8.1f} µs  {what}")


if __name__ == "__main__":
    main()
