"""`ssogw feed export`: the partner feed as 256-character TIS-620 records or CSV, with a manifest.

Each export writes every insured person of the section (the session's database holds other
tests' persons too: counts are compared with the table), only the fields the partner's data
scope allows, a manifest whose digest matches the file, and exactly one audit record.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.main import Gateway
from app.service.partner_feed import DETAIL, FIELDS, LAYOUT_ID, RECORD_LENGTH
from app.settings import Settings
from tests.integration.test_settlement_cli import ssogw
from tests.support.people import add_person
from tests.support.scenarios import current_month

pytestmark = pytest.mark.db


async def new_partner(gateway: Gateway, *, scope: list[str] | None = None) -> str:
    name = f"feed-{uuid.uuid4().hex[:8]}"
    await gateway.registry.add_partner(name=name, cidrs=["10.0.0.0/8"], display_name="ร้านทดสอบ")
    if scope is not None:
        await gateway.db.primary.execute(
            "UPDATE partners SET data_scope = $2 WHERE name = $1", name, scope
        )
    return name


def field(record: bytes, name: str) -> str:
    spec = next(f for f in DETAIL if f.name == name)
    return record[spec.start - 1 : spec.start - 1 + spec.width].decode("tis-620")


async def export(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, capsys: pytest.CaptureFixture[str],
    *argv: str,
) -> dict[str, Any]:  # fmt: skip
    assert await ssogw(monkeypatch, settings, "feed", "export", *argv, "--quiet", "--json") == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


async def feed_records(gateway: Gateway, partner: str) -> list[dict[str, Any]]:
    rows = await gateway.db.primary.fetch(
        "SELECT national_id, outcome, detail FROM audit_log"
        " WHERE operation = 'PartnerFeedExport' AND detail->>'partner' = $1 ORDER BY seq",
        partner,
    )
    return [dict(r) for r in rows]


async def test_a_fixed_width_feed_with_its_manifest_and_one_audit_record(
    gateway: Gateway, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    partner = await new_partner(gateway)
    async with gateway.db.primary.acquire() as conn:
        member = await add_person(
            conn, section=40, option=2, coverage_start=current_month(), title="นางสาว",
            first_name="กาญจนา\\ศรี", last_name="ใจดี",
        )  # fmt: skip
        odd = await add_person(
            conn, section=40, option=3, coverage_start=current_month(), first_name="Zoë😀",
            last_name="ค" * 60, status="inactive",
        )  # fmt: skip
        s39 = await add_person(conn, section=39, coverage_start=current_month().minus(3))
    target = tmp_path / "feed.txt"
    document = await export(monkeypatch, settings, capsys, "--partner", partner,
                            "--section", "40", "--output", str(target))  # fmt: skip
    expected_rows = await gateway.db.primary.fetchval(
        "SELECT count(*) FROM insured_persons WHERE section = 40"
    )
    data = target.read_bytes()
    records = data.split(b"\r\n")
    assert records.pop() == b"", "every record ends with CRLF"
    assert all(len(r) == RECORD_LENGTH for r in records)
    header, *details, trailer = records
    assert header.startswith(b"H" + LAYOUT_ID.encode() + partner.encode())
    assert header[51:60] == b"40YYYYYYY", "section and scope flags"
    assert trailer == f"T{len(details):09d}".encode().ljust(RECORD_LENGTH)
    assert len(details) == expected_rows and all(d[:1] == b"D" for d in details)
    by_id = {d[1:14].decode(): d for d in details}
    assert s39 not in by_id
    mine = by_id[member]
    assert field(mine, "title") == "นางสาว".ljust(20)
    assert field(mine, "first_name") == "กาญจนา\\ศรี".ljust(50), "a backslash is kept as it is"
    assert field(mine, "last_name").rstrip() == "ใจดี"
    assert (field(mine, "section"), field(mine, "status")) == ("40", "A")
    assert field(mine, "amount_due") == "000010000", "100.00 baht a month (option 2)"
    other = by_id[odd]
    assert field(other, "first_name").rstrip() == "Zo??", "outside TIS-620: one ? each"
    assert field(other, "last_name") == "ค" * 50, "cut to its width"
    assert (field(other, "status"), field(other, "amount_due")) == ("I", "000030000")

    manifest_path = tmp_path / "feed.txt.manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest == {k: document[k] for k in manifest}
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["row_count"] == expected_rows and manifest["bytes"] == len(data)
    assert (manifest["file"], manifest["format"], manifest["encoding"]) == (
        "feed.txt", "fixed", "TIS-620")  # fmt: skip
    assert (manifest["partner"], manifest["section"]) == (partner, 40)
    assert manifest["scope"] == list(FIELDS)
    assert manifest["generated_at"].endswith("+07:00")
    assert manifest["amount_month"] == str(current_month())
    assert [(r["national_id"], r["outcome"], r["detail"]) for r in await feed_records(
        gateway, partner)] == [(None, "ok", {
            "partner": partner, "scope": list(FIELDS), "rows": expected_rows,
            "sha256": manifest["sha256"], "format": "fixed", "section": 40})]  # fmt: skip
    assert not (tmp_path / "feed.txt.part").exists()


async def test_the_data_scope_limits_the_fields_in_both_layouts(
    gateway: Gateway, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    partner = await new_partner(gateway, scope=["national_id", "section", "amount_due"])
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=39, coverage_start=current_month().minus(3),
                               first_name="ประเสริฐ")  # fmt: skip
    target = tmp_path / "feed.csv"
    document = await export(monkeypatch, settings, capsys, "--partner", partner, "--section",
                            "39", "--format", "csv", "--output", str(target))  # fmt: skip
    data = target.read_bytes()
    assert document["scope"] == ["national_id", "section", "amount_due"]
    assert document["sha256"] == hashlib.sha256(data).hexdigest()
    assert data.count(b"\r\n") == document["row_count"] + 1, "a header row, CRLF line ends"
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert list(rows[0]) == ["national_id", "section", "amount_due"]
    assert {"national_id": nid, "section": "39", "amount_due": "432.00"} in rows
    assert "ประเสริฐ".encode() not in data

    fixed = tmp_path / "feed.txt"
    await export(monkeypatch, settings, capsys, "--partner", partner, "--output", str(fixed))
    record = next(r for r in fixed.read_bytes().split(b"\r\n") if r.startswith(b"D" + nid.encode()))
    assert field(record, "first_name") == " " * 50 and field(record, "title") == " " * 20
    assert field(record, "status") == " " and field(record, "amount_due") == "000043200"
    assert len(await feed_records(gateway, partner)) == 2


async def test_a_refused_export_leaves_no_file_and_says_why(
    gateway: Gateway, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    target = tmp_path / "feed.txt"
    unknown = f"nobody-{uuid.uuid4().hex[:6]}"
    code = await ssogw(monkeypatch, settings, "feed", "export", "--partner", unknown,
                       "--output", str(target), "--quiet")  # fmt: skip
    assert code == 2 and "client.not_found" in capsys.readouterr().err
    assert [(r["outcome"]) for r in await feed_records(gateway, unknown)] == ["client.not_found"]
    partner = await new_partner(gateway)
    await gateway.registry.set_partner_status(partner, active=False)
    code = await ssogw(monkeypatch, settings, "feed", "export", "--partner", partner,
                       "--output", str(target), "--quiet")  # fmt: skip
    assert code == 2 and "client.partner_disabled" in capsys.readouterr().err
    assert not target.exists() and not target.with_name("feed.txt.part").exists()
