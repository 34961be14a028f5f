"""`ssogw settlement import|report|export` against the session's primary."""

from __future__ import annotations

import asyncio
import json
from functools import partial
from pathlib import Path

import pytest

from app.cli import main as cli
from app.main import Gateway, lifecycle
from app.main.gateway import build_gateway
from app.settings import Settings
from app.settlement.bank_file import read_bank_file
from tests.conftest import PartnerCredentials
from tests.integration.test_settlement_import import AFTER_DAY, DAY, bank_bytes, business_day

pytestmark = pytest.mark.db


@pytest.fixture(autouse=True)
def closed_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands' clock here, pinned through the composition root: a week after DAY, so
    DAY has closed and may be settled."""
    monkeypatch.setattr(lifecycle, "build_gateway", partial(build_gateway, clock=lambda: AFTER_DAY))


def run_cli(monkeypatch: pytest.MonkeyPatch, settings: Settings, *argv: str) -> int:
    monkeypatch.setenv("SSOGW_PRIMARY_DSN", settings.primary_dsn or "")
    return cli.main(list(argv))


async def ssogw(monkeypatch: pytest.MonkeyPatch, settings: Settings, *argv: str) -> int:
    return await asyncio.to_thread(run_cli, monkeypatch, settings, *argv)


async def test_import_report_and_export_from_the_command_line(
    gateway: Gateway, partner: PartnerCredentials, settings: Settings, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    day = await business_day(gateway, partner)
    source = tmp_path / "settlement.txt"
    source.write_bytes(bank_bytes(day))
    where = ("--partner", day.partner, "--business-date", str(DAY))

    assert await ssogw(monkeypatch, settings, "settlement", "import", str(source), *where,
                       "--json", "--quiet") == 0  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    assert document["mismatches"] == 5 and not document["replayed"]
    assert document["lines"][0]["outcome"] == "only_in_file"
    assert document["lines"][-1]["outcome"] == "matched"

    assert await ssogw(monkeypatch, settings, "settlement", "import", str(source), *where,
                       "--quiet") == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "imported before; nothing changed" in text
    assert "months_differ" in text and "differs: months" in text

    assert await ssogw(monkeypatch, settings, "settlement", "report", str(document["id"]),
                       "--json", "--limit", "1") == 0  # fmt: skip
    page = json.loads(capsys.readouterr().out)
    assert [line["partnerTxnId"] for line in page["lines"]] == ["TX-CANCELLED"]
    assert page["nextCursor"] == "0.5"
    assert await ssogw(monkeypatch, settings, "settlement", "report", *where, "--json") == 0
    assert json.loads(capsys.readouterr().out)["id"] == document["id"]

    target = tmp_path / "gateway.txt"
    assert await ssogw(monkeypatch, settings, "settlement", "export", *where, "--output",
                       str(target), "--json") == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out) == {
        "output": str(target), "format": "bank", "lines": 5, "total": "782.00"}  # fmt: skip
    _, details = read_bank_file(target.read_bytes().splitlines(keepends=True))
    assert len(list(details)) == 5
    assert sorted(p.name for p in await asyncio.to_thread(lambda: list(tmp_path.iterdir()))) == [
        "gateway.txt", "settlement.txt"]  # fmt: skip


async def test_a_refused_file_exits_non_zero_and_says_why(
    gateway: Gateway, partner: PartnerCredentials, settings: Settings, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    day = await business_day(gateway, partner)
    source = tmp_path / "short.txt"
    source.write_bytes(bank_bytes(day).rsplit(b"T", 1)[0])  # trailer cut off
    code = await ssogw(monkeypatch, settings, "settlement", "import", str(source), "--partner",
                       day.partner, "--business-date", str(DAY), "--quiet")  # fmt: skip
    assert code == 2
    assert "client.invalid_settlement_file" in capsys.readouterr().err
    code = await ssogw(monkeypatch, settings, "settlement", "report", "--partner", day.partner)
    assert code == 2
