"""Settlement import and matching on the real primary: outcomes, totals, re-import, refusals."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import asyncpg
import pytest

from app.domain.calendar import BANGKOK
from app.domain.months import Month
from app.errors import InvalidSettlementFile, NotFound
from app.main import Gateway
from app.settlement.bank_file import BankHeader, SettlementLine, write_bank_file
from app.settlement.csv_file import csv_header, csv_record
from app.settlement.repository import SettlementRepository
from app.settlement.service import SettlementService
from tests.conftest import PartnerCredentials
from tests.support.people import add_person

pytestmark = pytest.mark.db

DAY = date(2031, 5, 12)
MAY, JUNE, APRIL = Month(2031, 5), Month(2031, 6), Month(2031, 4)


@dataclass
class Day:
    """A partner's business day: ledger rows written, and the partner's file of it."""

    partner: str
    partner_id: int
    people: dict[str, str]  # label -> national ID
    lines: list[SettlementLine]


async def pay(conn: asyncpg.Connection, partner_id: int, txn: str, nid: str, section: int,
              months: tuple[Month, ...], amount: int, *, cancelled: bool = False,
              day: date = DAY) -> int:  # fmt: skip
    """Write one ledger row straight to the primary, as a confirm (and cancel) would."""
    at = datetime.combine(day, time(10, 30), tzinfo=BANGKOK)
    payment_id: int = await conn.fetchval(
        "INSERT INTO payments (partner_id, partner_txn_id, receipt_no, national_id, section,"
        " s40_option, months, amount_satang, request_hash, business_date, paid_at, state,"
        " cancelled_at, store_id, terminal_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'S-0042', 'T-07')"
        " RETURNING id",
        partner_id, txn, f"R-{uuid.uuid4().hex[:20]}", nid, section, 1 if section == 40 else None,
        [m.first_day for m in months], amount, b"\0" * 32, day, at,
        "cancelled" if cancelled else "confirmed", at if cancelled else None,
    )  # fmt: skip
    return payment_id


async def business_day(gw: Gateway, partner: PartnerCredentials) -> Day:
    """Seven ledger rows and eight file lines covering every outcome."""
    async with gw.db.primary.acquire() as conn:
        pid: int = await conn.fetchval("SELECT id FROM partners WHERE name = $1", partner.name)
        people = {
            "somying": await add_person(conn, section=40, coverage_start=Month(2030, 1)),
            "somsak": await add_person(conn, section=39, coverage_start=Month(2029, 1),
                                       title="นาย", first_name="สมศักดิ์", last_name="ทองคำ"),
            "kanchana": await add_person(conn, section=40, coverage_start=Month(2030, 1),
                                         title="นางสาว", first_name="กาญจนา",
                                         last_name="ศรีสุข"),
            "wichai": await add_person(conn, section=40, coverage_start=Month(2030, 1),
                                       title="นาย", first_name="วิชัย", last_name="แก้วมณี"),
        }  # fmt: skip
        a, b, c, d = people.values()
        await pay(conn, pid, "TX-MATCH-40", a, 40, (MAY,), 7_000)
        await pay(conn, pid, "TX-MATCH-39", b, 39, (APRIL,), 43_200)
        await pay(conn, pid, "TX-AMOUNT", c, 40, (MAY, JUNE), 14_000)
        await pay(conn, pid, "TX-MONTHS", d, 40, (MAY,), 7_000)
        await pay(conn, pid, "TX-GATEWAY", a, 40, (JUNE,), 7_000)
        await pay(conn, pid, "TX-CANCELLED", c, 40, (Month(2031, 7),), 7_000, cancelled=True)
        await pay(conn, pid, "TX-OTHER-DAY", d, 40, (JUNE,), 7_000, day=date(2031, 5, 11))
    at = datetime.combine(DAY, time(10, 31), tzinfo=BANGKOK)
    lines = [
        SettlementLine(0, "TX-MATCH-40", a, 40, (MAY,), 7_000, at, "นางสมหญิง ใจดี"),
        SettlementLine(0, "TX-MATCH-39", b, 39, (APRIL,), 43_200, at, "นายสมศักดิ์ ทองคำ"),
        SettlementLine(0, "TX-AMOUNT", c, 40, (MAY, JUNE), 15_000, at, "นางสาวกาญจนา ศรีสุข"),
        SettlementLine(0, "TX-MONTHS", d, 40, (JUNE,), 7_000, at, "นายวิชัย แก้วมณี"),
        SettlementLine(0, "TX-CANCELLED", c, 40, (Month(2031, 7),), 7_000, at),
        SettlementLine(0, "TX-FILE-ONLY", b, 39, (MAY,), 43_200, at, "นายสมศักดิ์ ทองคำ"),
    ]
    return Day(partner.name, pid, people, lines)


def bank_bytes(day: Day, lines: list[SettlementLine] | None = None) -> bytes:
    header = BankHeader(DAY, partner_code=day.partner, bank_code="014")
    return b"".join(write_bank_file(header, day.lines if lines is None else lines))


def csv_bytes(day: Day) -> bytes:
    return csv_header() + b"".join(csv_record(line) for line in day.lines)


#: The settlements are taken a week after DAY: a day is settled only once it has closed, and
#: the tests also import files for the day after.
AFTER_DAY = datetime.combine(DAY, time(9, 0), tzinfo=BANGKOK) + timedelta(days=7)


def service(gw: Gateway) -> SettlementService:
    return SettlementService(
        store=SettlementRepository(lambda: gw.db.primary), clock=lambda: AFTER_DAY
    )


async def stored_rows(gw: Gateway, partner_id: int) -> tuple[int, int]:
    row = await gw.db.primary.fetchrow(
        "SELECT count(DISTINCT s.id) AS imports, count(l.*) AS lines FROM settlement_imports s"
        " LEFT JOIN settlement_lines l ON l.import_id = s.id WHERE s.partner_id = $1",
        partner_id,
    )
    assert row is not None
    return row["imports"], row["lines"]


EXPECTED = [
    ("only_in_file", 6, "TX-CANCELLED", "the gateway has this transaction cancelled"),
    ("only_in_file", 7, "TX-FILE-ONLY", None),
    ("only_in_gateway", None, "TX-GATEWAY", None),
    ("months_differ", 5, "TX-MONTHS", "differs: months"),
    ("amount_differs", 4, "TX-AMOUNT", "differs: amount"),
    ("matched", 2, "TX-MATCH-40", None),
    ("matched", 3, "TX-MATCH-39", None),
]


async def test_a_tis620_bank_file_is_matched_and_mismatches_come_first(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    day = await business_day(gateway, partner)
    data = bank_bytes(day)
    assert "นางสาวกาญจนา".encode("tis_620") in data
    report = await service(gateway).import_file(
        io.BytesIO(data), partner=day.partner, business_date=DAY, file_name="cvs-20310512.txt"
    )
    assert not report.replayed
    assert [(m.outcome.value, m.line_no, m.partner_txn_id, m.note) for m in report.lines] == (
        EXPECTED
    )
    amount = report.lines[4]
    assert (amount.file_amount_satang, amount.gateway_amount_satang) == (15_000, 14_000)
    months = report.lines[3]
    assert (months.file_months, months.gateway_months) == ((JUNE,), (MAY,))
    doc = report.document()
    assert doc["counts"] == {"onlyInFile": 2, "onlyInGateway": 1, "personDiffers": 0,
                             "monthsDiffer": 1, "amountDiffers": 1, "matched": 2}  # fmt: skip
    assert doc["mismatches"] == 5
    assert doc["totals"] == [
        {"section": 39, "fileLines": 2, "fileAmount": "864.00", "gatewayLines": 1,
         "gatewayAmount": "432.00", "matchedLines": 1, "matchedAmount": "432.00",
         "differenceAmount": "432.00"},
        {"section": 40, "fileLines": 4, "fileAmount": "360.00", "gatewayLines": 4,
         "gatewayAmount": "350.00", "matchedLines": 1, "matchedAmount": "70.00",
         "differenceAmount": "10.00"},
    ]  # fmt: skip
    assert doc["header"] == {
        "partnerCode": day.partner, "bankCode": "014", "companyAccount": "0000000000",
        "companyName": "สำนักงานประกันสังคม",
    }  # fmt: skip
    assert doc["fileName"] == "cvs-20310512.txt" and doc["format"] == "bank"

    again = await service(gateway).report(report.record.id)  # the stored result, shown again
    assert again.lines == report.lines and again.record.summary == report.record.summary


async def test_the_same_file_again_is_recognised_and_changes_nothing(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    day = await business_day(gateway, partner)
    data = bank_bytes(day)
    first = await service(gateway).import_file(
        io.BytesIO(data), partner=day.partner, business_date=DAY
    )
    before = await stored_rows(gateway, day.partner_id)
    assert before == (1, 7)
    # the ledger changes meanwhile; a re-import still answers what was stored
    async with gateway.db.primary.acquire() as conn:
        await pay(conn, day.partner_id, "TX-LATE", day.people["somying"], 40, (APRIL,), 7_000)
    second = await service(gateway).import_file(
        io.BytesIO(data), partner=day.partner, business_date=DAY
    )
    assert second.replayed and second.record.id == first.record.id
    assert second.lines == first.lines
    assert await stored_rows(gateway, day.partner_id) == before


async def test_a_corrected_file_is_a_new_import_and_the_latest_is_reported(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    day = await business_day(gateway, partner)
    svc = service(gateway)
    first = await svc.import_file(
        io.BytesIO(bank_bytes(day)), partner=day.partner, business_date=DAY
    )
    fixed = await svc.import_file(
        io.BytesIO(bank_bytes(day, day.lines[:2])), partner=day.partner, business_date=DAY
    )
    assert fixed.record.id != first.record.id
    latest = await svc.report_for(partner=day.partner, business_date=DAY, limit=2)
    assert latest.record.id == fixed.record.id
    assert [m.outcome.value for m in latest.lines] == ["only_in_gateway", "only_in_gateway"]
    assert latest.next_cursor is not None
    rest = await svc.report(fixed.record.id, limit=100, cursor=latest.next_cursor)
    assert [m.partner_txn_id for m in rest.lines] == ["TX-GATEWAY", "TX-MATCH-40", "TX-MATCH-39"]
    assert rest.next_cursor is None


async def test_a_bad_trailer_is_refused_with_the_numbers_and_nothing_is_stored(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    day = await business_day(gateway, partner)
    records = bank_bytes(day).split(b"\r\n")
    records[-2] = records[-2][:31] + b"00000000000099999" + records[-2][48:]
    with pytest.raises(InvalidSettlementFile) as caught:
        await service(gateway).import_file(
            io.BytesIO(b"\r\n".join(records)), partner=day.partner, business_date=DAY
        )
    assert caught.value.details == {
        "line": 8, "reason": "trailer", "trailer_count": 6, "detail_count": 6,
        "trailer_total_satang": 99_999, "detail_total_satang": 122_400,
    }  # fmt: skip
    assert await stored_rows(gateway, day.partner_id) == (0, 0)


async def test_a_csv_file_gives_the_same_result(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    day = await business_day(gateway, partner)
    report = await service(gateway).import_file(
        io.BytesIO(csv_bytes(day)), partner=day.partner, business_date=DAY
    )
    assert report.record.file_format == "csv"
    assert [(m.outcome.value, m.line_no, m.partner_txn_id, m.note) for m in report.lines] == (
        EXPECTED
    )


async def test_a_file_for_another_day_or_an_unknown_partner_is_refused(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    day = await business_day(gateway, partner)
    with pytest.raises(InvalidSettlementFile, match="business date 2031-05-12, not 2031-05-13"):
        await service(gateway).import_file(
            io.BytesIO(bank_bytes(day)), partner=day.partner, business_date=date(2031, 5, 13)
        )
    with pytest.raises(NotFound, match="No partner"):
        await service(gateway).import_file(
            io.BytesIO(bank_bytes(day)), partner="no-such-partner", business_date=DAY
        )
    assert await stored_rows(gateway, day.partner_id) == (0, 0)


async def test_the_export_is_the_gateways_own_file_and_matches_itself(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    day = await business_day(gateway, partner)
    svc = service(gateway)
    for file_format in ("bank", "csv"):
        out = io.BytesIO()
        done = await svc.export(
            out.write, partner=day.partner, business_date=DAY, file_format=file_format
        )
        assert (done.lines, done.total_satang) == (5, 78_200)  # confirmed, not cancelled
        data = out.getvalue()
        if file_format == "bank":
            assert "นางสมหญิง ใจดี".encode("tis_620") in data
        report = await svc.import_file(io.BytesIO(data), partner=day.partner, business_date=DAY)
        assert report.record.file_format == file_format
        assert report.record.summary.mismatches == 0
        assert {m.partner_txn_id for m in report.lines} == {
            "TX-MATCH-40", "TX-MATCH-39", "TX-AMOUNT", "TX-MONTHS", "TX-GATEWAY"}  # fmt: skip
