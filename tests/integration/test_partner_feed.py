"""`ssogw feed export`: the partner feed as 256-character TIS-620 records or CSV, with a manifest.

Each export writes every insured person of the section (the session's database holds other
tests' persons too: counts are compared with the table), only the fields the partner's data
scope allows, a manifest whose digest matches the file, and two audit records: its start, with
the manifest of the persons in it committed before the first byte leaves, and its end.

Over REST (scope admin) the same export is streamed as the response body, and its manifest is
read back from its audit record at ``/feed-exports/latest``.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.audit.admin_gate import AdminGate
from app.audit.queries import MANIFEST_PARTS
from app.cli.session import account
from app.feed.access import FeedAccess
from app.feed.records import DETAIL, RECORD_LENGTH, manifest_digest
from app.feed.repository import FeedRepository
from app.feed.routes import feed_router
from app.feed.service import FIELDS, LAYOUT_ID, FeedService
from app.main import Gateway
from app.observability.http_metrics import HttpMetricsMiddleware
from app.settings import Settings
from tests.integration.test_settlement_cli import ssogw
from tests.support.clock import business_clock
from tests.support.people import add_person
from tests.support.refusals import recorded
from tests.support.rest_api import bearer, new_client, problem, rest
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


async def start_records(gateway: Gateway, export_id: str) -> list[dict[str, Any]]:
    """The start record of the export ``export_id``."""
    rows = await gateway.db.primary.fetch(
        "SELECT national_id, outcome, protocol, request_id, at, detail FROM audit_log"
        " WHERE operation = 'PartnerFeedExportStart' AND detail->>'export_id' = $1",
        export_id,
    )
    return [dict(r) for r in rows]


async def manifest_ids(gateway: Gateway, export_id: str) -> set[str]:
    """The national IDs the manifest of ``export_id`` holds."""
    ids = await gateway.db.primary.fetchval(
        "SELECT array_agg(i::text) FROM audit_feed_manifest, unnest(national_ids) AS i"
        " WHERE export_id = $1::uuid",
        export_id,
    )
    return set(ids or ())


async def feed_records(gateway: Gateway, partner: str) -> list[dict[str, Any]]:
    rows = await gateway.db.primary.fetch(
        "SELECT national_id, outcome, detail FROM audit_log"
        " WHERE operation = 'PartnerFeedExport' AND detail->>'partner' = $1 ORDER BY seq",
        partner,
    )
    return [dict(r) for r in rows]


@pytest.mark.usefixtures("cli_time")  # drives ssogw: wall-clock business time
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
            "sha256": manifest["sha256"], "format": "fixed", "section": 40,
            "bytes": manifest["bytes"], "generated_at": manifest["generated_at"],
            "export_id": manifest["export_id"]})]  # fmt: skip
    [start] = await start_records(gateway, manifest["export_id"])
    assert (start["national_id"], start["outcome"], start["protocol"]) == (None, "ok", "cli")
    # The digest of the manifest of persons, sealed with the start record (verify holds the
    # manifest's rows to it).
    parts = await gateway.db.primary.fetch(MANIFEST_PARTS, start["at"], manifest["export_id"])
    sealed = manifest_digest(manifest["export_id"], [tuple(p) for p in parts])
    assert start["detail"] == {
        "export_id": manifest["export_id"], "partner": partner, "scope": list(FIELDS),
        "format": "fixed", "section": 40, "persons": expected_rows, "manifest_sha256": sealed,
    }  # fmt: skip
    assert await manifest_ids(gateway, manifest["export_id"]) == set(by_id)
    assert not (tmp_path / "feed.txt.part").exists()


@pytest.mark.usefixtures("cli_time")  # drives ssogw: wall-clock business time
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


@pytest.mark.usefixtures("cli_time")  # drives ssogw: wall-clock business time
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


# --- over REST -------------------------------------------------------------------------------
@asynccontextmanager
async def feed_api(gateway: Gateway, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """The feed routes on the session's gateway, in process, with ``token`` (if any)."""
    app = FastAPI()
    app.add_middleware(HttpMetricsMiddleware, metrics=gateway.metrics)
    app.include_router(feed_router(feeds=gateway.feeds))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway.test", timeout=30,
        headers=bearer(token) if token else {},
    ) as client:  # fmt: skip
        yield client


async def records_of(gateway: Gateway, request_id: str) -> list[dict[str, Any]]:
    """The audit records of one request, oldest first."""
    rows = await recorded(gateway, lambda: gateway.db.primary.fetch(
        "SELECT operation, outcome, protocol, principal_name, national_id, detail"
        " FROM audit_log WHERE request_id = $1 ORDER BY seq",
        request_id,
    ))  # fmt: skip
    return [dict(r) for r in rows]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


HEADER_END = RECORD_LENGTH + 2  # the H record and its CRLF
GENERATED = slice(31, 45)  # where the H record says when the file was made


@pytest.mark.usefixtures("cli_time")  # drives ssogw: wall-clock business time
async def test_the_api_streams_the_file_the_command_line_writes(
    gateway: Gateway, settings: Settings, live_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    partner = await new_partner(gateway)
    async with gateway.db.primary.acquire() as conn:
        for option in (1, 2, 3):
            await add_person(conn, section=40, option=option, coverage_start=current_month(),
                             first_name="ศรีสมร")  # fmt: skip
    expected_rows = await gateway.db.primary.fetchval(
        "SELECT count(*) FROM insured_persons WHERE section = 40"
    )
    client, token = await new_client(gateway, ["admin"])
    where = ("--partner", partner, "--section", "40")
    cli_csv, cli_fixed = tmp_path / "feed.csv", tmp_path / "feed.txt"
    await export(monkeypatch, settings, capsys, *where, "--format", "csv", "--output", str(cli_csv))
    await export(monkeypatch, settings, capsys, *where, "--output", str(cli_fixed))
    async with rest(live_url, token) as api:
        # The manifest of the command line's export, from its audit record.
        by_cli = (await api.get(f"/api/v1/partners/{partner}/feed-exports/latest")).json()
        as_csv = await api.get(
            f"/api/v1/partners/{partner}/feed", params={"section": 40, "format": "csv"}
        )
        fixed = await api.get(f"/api/v1/partners/{partner}/feed", params={"section": 40})
        latest = await api.get(f"/api/v1/partners/{partner}/feed-exports/latest")
    assert (by_cli["protocol"], by_cli["exportedBy"]) == ("cli", account())
    assert by_cli["sha256"] == sha256(cli_fixed.read_bytes())
    assert (by_cli["rowCount"], by_cli["byteCount"]) == (expected_rows, cli_fixed.stat().st_size)

    for response, media in ((as_csv, "text/csv; charset=utf-8"),
                            (fixed, "text/plain; charset=tis-620")):  # fmt: skip
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == media
        assert response.headers["transfer-encoding"] == "chunked", "streamed, not buffered"
        assert response.headers["cache-control"] == "no-store"
    assert sha256(as_csv.content) == sha256(cli_csv.read_bytes()), "the same CSV, byte for byte"
    # A fixed file names the second it was made in its H record; all else is the same.
    body, written = fixed.content, cli_fixed.read_bytes()
    assert sha256(body[HEADER_END:]) == sha256(written[HEADER_END:])
    assert body[: GENERATED.start] == written[: GENERATED.start]
    assert body[GENERATED.stop : HEADER_END] == written[GENERATED.stop : HEADER_END]
    disposition = fixed.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="ssofeed-{partner}-s40-')
    assert disposition.endswith(".txt") and "filename*=UTF-8''ssofeed-" in disposition

    assert latest.status_code == 200, latest.text
    manifest = latest.json()
    assert manifest["requestId"] == fixed.headers["x-request-id"]
    assert manifest["sha256"] == sha256(body)
    assert (manifest["rowCount"], manifest["byteCount"]) == (expected_rows, len(body))
    assert (manifest["protocol"], manifest["exportedBy"]) == ("rest", client)
    assert (manifest["format"], manifest["encoding"], manifest["section"]) == (
        "fixed", "TIS-620", 40)  # fmt: skip
    assert (manifest["partner"], manifest["partnerDisplayName"]) == (partner, "ร้านทดสอบ")
    assert manifest["scope"] == list(FIELDS) and manifest["amountMonth"] == str(current_month())
    generated = datetime.fromisoformat(manifest["generatedAt"])
    assert f"{generated:%Y%m%d%H%M%S}".encode() == body[GENERATED]
    assert manifest["generatedAt"].endswith("+07:00")

    # Each export, by either route, is two audit records: its start, and its end.
    for response, digest in ((as_csv, sha256(as_csv.content)), (fixed, sha256(body))):
        records = await records_of(gateway, response.headers["x-request-id"])
        assert [(r["operation"], r["outcome"], r["protocol"], r["principal_name"],
                 r["national_id"], r["detail"].get("sha256")) for r in records] == [
            ("PartnerFeedExportStart", "ok", "rest", client, None, None),
            ("PartnerFeedExport", "ok", "rest", client, None, digest)]  # fmt: skip
        start, end = records
        assert start["detail"]["export_id"] == end["detail"]["export_id"]
        assert start["detail"]["persons"] == expected_rows
    assert [r["outcome"] for r in await feed_records(gateway, partner)] == ["ok"] * 4


async def test_the_feed_needs_the_admin_scope_and_an_active_partner(gateway: Gateway) -> None:
    partner = await new_partner(gateway)
    _, not_admin = await new_client(gateway, ["counter", "audit"])
    feed, latest = (
        f"/api/v1/partners/{partner}/feed",
        f"/api/v1/partners/{partner}/feed-exports/latest",
    )
    async with feed_api(gateway, not_admin) as api:
        wrong_scope = await api.get(feed)
        problem(wrong_scope, 403, "client.scope_not_allowed")
        problem(await api.get(latest), 403, "client.scope_not_allowed")
    async with feed_api(gateway, None) as api:
        no_token = await api.get(feed)
        problem(no_token, 401, "client.unauthenticated")
    _, admin = await new_client(gateway, ["admin"])
    unknown = f"nobody-{uuid.uuid4().hex[:6]}"
    async with feed_api(gateway, admin) as api:
        problem(await api.get(latest), 404, "client.not_found")  # no export yet
        problem(await api.get(f"/api/v1/partners/{unknown}/feed-exports/latest"), 404,
                "client.not_found")  # fmt: skip
        not_found = await api.get(f"/api/v1/partners/{unknown}/feed", params={"format": "csv"})
        problem(not_found, 404, "client.not_found")
        problem(await api.get(feed, params={"section": 41}), 422, "client.invalid_input")
        await gateway.registry.set_partner_status(partner, active=False)
        disabled = await api.get(feed)
        problem(disabled, 403, "client.partner_disabled")
    # Every refused export is on the record, once; nothing was exported.
    for response, outcome in ((wrong_scope, "client.scope_not_allowed"),
                              (no_token, "client.unauthenticated"),
                              (not_found, "client.not_found"),
                              (disabled, "client.partner_disabled")):  # fmt: skip
        records = await records_of(gateway, response.headers["x-request-id"])
        assert [(r["operation"], r["outcome"]) for r in records] == [
            ("PartnerFeedExport", outcome)]  # fmt: skip
    assert [r["outcome"] for r in await feed_records(gateway, partner)] == []


async def test_a_csv_download_in_process_and_one_record_for_it(gateway: Gateway) -> None:
    partner = await new_partner(gateway, scope=["national_id", "amount_due"])
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=39, coverage_start=current_month().minus(3))
    client, admin = await new_client(gateway, ["admin"])
    async with feed_api(gateway, admin) as api:
        response = await api.get(f"/api/v1/partners/{partner}/feed", params={"format": "csv"})
        manifest = (await api.get(f"/api/v1/partners/{partner}/feed-exports/latest")).json()
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith(
        f'attachment; filename="ssofeed-{partner}-all-')  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))
    assert {"national_id": nid, "amount_due": "432.00"} in rows
    assert (manifest["rowCount"], manifest["sha256"]) == (len(rows), sha256(response.content))
    assert (manifest["section"], manifest["scope"]) == (None, ["national_id", "amount_due"])
    start, record = await records_of(gateway, response.headers["x-request-id"])
    assert (record["outcome"], record["principal_name"]) == ("ok", client)
    export_id = start["detail"]["export_id"]
    assert record["detail"] == {
        "partner": partner, "scope": ["national_id", "amount_due"], "rows": len(rows),
        "sha256": manifest["sha256"], "format": "csv", "section": None,
        "bytes": len(response.content), "generated_at": manifest["generatedAt"],
        "export_id": export_id,
    }  # fmt: skip
    assert await manifest_ids(gateway, export_id) == {row["national_id"] for row in rows}


async def test_a_reader_that_leaves_early_stops_the_export_and_is_on_the_record(
    gateway: Gateway,
) -> None:
    partner = await new_partner(gateway)
    async with gateway.db.primary.acquire() as conn:
        for _ in range(3):
            await add_person(conn, section=40, option=1, coverage_start=current_month())
    _, admin = await new_client(gateway, ["admin"])
    gate = AdminGate(admission=gateway.admission, audit=gateway.audit,
                     prefixes=gateway.settings.prefixes(), events=gateway.metrics,
                     clock=business_clock())  # fmt: skip
    store = FeedRepository(pool_provider=lambda: gateway.db.primary)
    # One chunk of buffer: the export cannot finish while the reader holds back.
    service = FeedService(store=store, sink=gateway.audit, clock=business_clock())
    feeds = FeedAccess(gate=gate, service=service, buffer=1)
    request_id = uuid.uuid4().hex
    download = await feeds.download(
        caller=Caller(protocol=Protocol.REST, source_ip="127.0.0.1", request_id=request_id),
        credentials=BearerToken(admin), partner=partner,
    )  # fmt: skip
    chunks: Any = download.chunks
    assert (await anext(chunks)).startswith(b"H" + LAYOUT_ID.encode())
    await chunks.aclose()
    for _ in range(100):
        records = await records_of(gateway, request_id)
        if len(records) == 2:  # the start, and the end the abandoned export leaves
            break
        await asyncio.sleep(0.05)
    assert [(r["operation"], r["outcome"], r["detail"].get("reason")) for r in records] == [
        ("PartnerFeedExportStart", "ok", None),
        ("PartnerFeedExport", "client.bad_request", "abandoned")]  # fmt: skip
    # The COPY was stopped and its connection given back: the next export runs.
    async with feed_api(gateway, admin) as api:
        response = await api.get(f"/api/v1/partners/{partner}/feed")
    assert response.status_code == 200 and response.content.endswith(b"\r\n")
    assert len(await records_of(gateway, request_id)) == 2
