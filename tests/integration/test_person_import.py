"""`ssogw import persons`: TIS-620 extracts staged with COPY, upserted, all or nothing."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from app.cli import main as cli
from app.domain.months import Month
from app.errors import InvalidExtract
from app.insured.extract_file import ExtractHeader, PersonRecord, write_extract
from app.insured.import_repository import PersonImportRepository
from app.insured.person_import import PersonImportService
from app.main import Gateway
from app.settings import Settings
from tests.support.people import add_person, new_national_id

pytestmark = pytest.mark.db


def s39(nid: str, first: str = "กาญจนา", last: str = "ศรีสุข") -> PersonRecord:
    return PersonRecord(0, nid, "น.ส.", first, last, 39, "active", date(2019, 4, 1),
                        period_of_payment="monthly", return_code="00")  # fmt: skip


def s40(nid: str, option: int = 2) -> PersonRecord:
    return PersonRecord(0, nid, "นาย", "ณัฐพล", "วงศ์สวัสดิ์", 40, "active", date(2021, 8, 1),
                        s40_option=option, payment_method="counter", period_of_payment="202405",
                        birth_date=date(1988, 2, 29), last_paid_on=date(2024, 6, 5),
                        last_paid_satang=10_000)  # fmt: skip


def extract(section: int, persons: list[PersonRecord]) -> bytes:
    header = ExtractHeader(section, date(2024, 6, 30), "SSO-MF")
    return b"".join(write_extract(header, persons))


def service(gw: Gateway) -> PersonImportService:
    return PersonImportService(store=PersonImportRepository(lambda: gw.db.primary))


async def person(gw: Gateway, nid: str) -> dict[str, object] | None:
    row = await gw.db.primary.fetchrow("SELECT * FROM insured_persons WHERE national_id = $1", nid)
    return None if row is None else dict(row)


async def test_good_lines_load_and_bad_lines_are_rejected_with_line_and_reason(
    gateway: Gateway,
) -> None:
    ids = [new_national_id() for _ in range(3)]
    bad_checksum = ids[0][:-1] + str((int(ids[0][-1]) + 1) % 10)
    data = extract(39, [s39(ids[0]), s39(bad_checksum), s39(ids[1]), s39(ids[0], "ซ้ำ"),
                        s39(ids[2])])  # fmt: skip
    lines = data.split(b"\r\n")
    lines[5] = lines[5][:154] + b"Z" + lines[5][155:]  # ids[2]: status code unknown
    seen: list[int] = []
    result = await service(gateway).import_extract(
        io.BytesIO(b"\r\n".join(lines)), section=39, progress=seen.append
    )
    assert sum(seen) == len(data)
    assert (result.lines, result.inserted, result.updated, result.unchanged) == (5, 2, 0, 0)
    assert result.rejected == 3
    assert [(r.line_no, r.field) for r in result.rejections] == [
        (3, "national_id"), (5, "national_id"), (6, "status")]  # fmt: skip
    assert "check digit" in result.rejections[0].reason
    assert result.rejections[1].reason == "the ID repeats line 2"
    stored = await person(gateway, ids[0])
    assert stored is not None
    assert (stored["title"], stored["first_name"], stored["last_name"]) == (
        "น.ส.",
        "กาญจนา",
        "ศรีสุข",
    )
    assert (stored["section"], stored["status"], stored["effective_date"]) == (
        39, "active", date(2019, 4, 1))  # fmt: skip
    assert (stored["period_of_payment"], stored["return_code"]) == ("monthly", "00")
    assert await person(gateway, ids[2]) is None


async def test_a_second_extract_updates_what_changed_and_leaves_the_rest(
    gateway: Gateway,
) -> None:
    known = [new_national_id() for _ in range(3)]
    async with gateway.db.primary.acquire() as conn:
        existing = await add_person(conn, section=40, option=1, coverage_start=Month(2022, 1))
    await service(gateway).import_extract(
        io.BytesIO(extract(40, [s40(nid) for nid in known])), section=40
    )
    changed = [s40(known[0]), replace(s40(known[1]), status="inactive"), s40(known[2]),
               s40(existing, option=3)]  # fmt: skip
    result = await service(gateway).import_extract(io.BytesIO(extract(40, changed)), section=40)
    assert (result.inserted, result.updated, result.unchanged, result.rejected) == (0, 2, 2, 0)
    moved = await person(gateway, existing)
    assert moved is not None
    assert (moved["s40_option"], moved["first_name"], moved["birth_date"]) == (
        3, "ณัฐพล", date(1988, 2, 29))  # fmt: skip
    assert (moved["last_paid_on"], moved["last_paid_satang"]) == (date(2024, 6, 5), 10_000)
    status = await person(gateway, known[1])
    assert status is not None and status["status"] == "inactive"


@pytest.mark.parametrize("damage", ["trailer", "encoding", "header"])
async def test_a_fatal_error_loads_nothing(gateway: Gateway, damage: str) -> None:
    ids = [new_national_id() for _ in range(4)]
    lines = extract(39, [s39(nid) for nid in ids]).split(b"\r\n")
    if damage == "trailer":
        lines[-2] = b"T000000005".ljust(200)
    elif damage == "encoding":  # a line saved as UTF-8 by some editor
        lines[3] = lines[3].decode("tis_620").encode("utf-8")
    else:
        lines[0] = b"HS40" + lines[0][4:]
    with pytest.raises(InvalidExtract) as caught:
        await service(gateway).import_extract(io.BytesIO(b"\r\n".join(lines)), section=39)
    assert caught.value.details["line"] in (1, 4, 6)
    for nid in ids:
        assert await person(gateway, nid) is None
    assert (
        await gateway.db.primary.fetchval(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'person_stage'"
        )
        == 0
    )


async def test_the_command_line_prints_one_json_summary(
    gateway: Gateway, settings: Settings, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    ids = [new_national_id() for _ in range(2)]
    source = tmp_path / "s40.dat"
    source.write_bytes(extract(40, [s40(ids[0]), s40(ids[1], option=1), s40(ids[0])]))
    monkeypatch.setenv("SSOGW_PRIMARY_DSN", settings.primary_dsn or "")
    argv = ["import", "persons", str(source), "--format", "s40", "--json", "--quiet"]
    assert await asyncio.to_thread(cli.main, argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert {k: document[k] for k in ("lines", "inserted", "updated", "rejected")} == {
        "lines": 3, "inserted": 2, "updated": 0, "rejected": 1}  # fmt: skip
    assert document["rejections"] == [
        {"lineNo": 4, "field": "national_id", "reason": "the ID repeats line 2"}]  # fmt: skip

    argv = ["import", "persons", str(source), "--format", "s39", "--quiet"]
    assert await asyncio.to_thread(cli.main, argv) == 2  # the header says S40
    assert "client.invalid_extract" in capsys.readouterr().err
