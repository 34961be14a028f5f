"""A feed's manifest of persons is held by the audit chain: its start record carries the
manifest's digest, so a manifest row removed, edited or added afterwards (by the owner, or by the
service role, which may insert) is found by `ssogw audit verify`, which names the feed. On a
database of its own (tests/integration/test_audit_tampering.py)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.audit.records import Requester
from app.db.local_pair import PairRecord
from app.feed.records import MANIFEST_PART, START_OPERATION, manifest_digest
from app.main import Gateway
from tests.integration.test_audit_tampering import (  # noqa: F401 (fixtures)
    gateway_on,
    scratch,
    template,
)
from tests.support.clock import PinnedClock
from tests.support.people import add_person
from tests.support.scenarios import current_month

pytestmark = pytest.mark.db

TAMPERING = {
    "a part removed": "DELETE FROM audit_feed_manifest WHERE export_id = $1::uuid",
    "an ID taken out": "UPDATE audit_feed_manifest SET national_ids = national_ids[2:]"
    " WHERE export_id = $1::uuid",
    "an ID put in": "UPDATE audit_feed_manifest SET national_ids = national_ids"
    " || 1101700230703::bigint WHERE export_id = $1::uuid",
}


async def exported(gw: Gateway, partner: str) -> dict[str, Any]:
    """Run one export to nowhere; its start record's detail."""
    requester = Requester(
        protocol="cli", principal_kind="operator", request_id=uuid.uuid4().hex, operator="tester"
    )
    await gw.feed_exports.export(lambda _data: None, partner=partner, requester=requester)
    row = await gw.db.primary.fetchrow(
        "SELECT detail FROM audit_log WHERE operation = $1 AND request_id = $2",
        START_OPERATION, requester.request_id,
    )  # fmt: skip
    detail: dict[str, Any] = row["detail"]
    return detail


@pytest.mark.parametrize("tampering", TAMPERING)
async def test_a_manifest_changed_after_its_feed_left_is_named_by_verify(
    scratch: PairRecord,  # noqa: F811
    tmp_path: Path, clock: PinnedClock, tampering: str,
) -> None:  # fmt: skip
    async with gateway_on(scratch, tmp_path, clock) as gw:
        async with gw.db.primary.acquire() as conn:
            people = [
                await add_person(conn, section=40, option=1, coverage_start=current_month())
                for _ in range(3)
            ]
        partner = f"feed-{uuid.uuid4().hex[:8]}"
        await gw.registry.add_partner(name=partner, cidrs=["10.0.0.0/8"])
        detail = await exported(gw, partner)
        export_id = detail["export_id"]
        parts = await gw.db.primary.fetch(
            "SELECT part, national_ids FROM audit_feed_manifest WHERE export_id = $1::uuid",
            export_id,
        )
        assert {str(i) for p in parts for i in p["national_ids"]} == set(people)
        assert detail["persons"] == 3 and len(parts) == 1 == -(-3 // MANIFEST_PART)
        assert detail["manifest_sha256"] != manifest_digest(export_id, []), "it covers the IDs"
        assert await gw.sealer.seal() is not None
        result = await gw.audit_trail.verify()
        assert result.ok, result.first_broken
        start_seq = await gw.db.primary.fetchval(
            "SELECT seq FROM audit_log WHERE operation = $1", START_OPERATION
        )

        owner = await asyncpg.connect(scratch.owner_dsn)  # someone with database access
        try:
            await owner.execute(TAMPERING[tampering], export_id)
        finally:
            await owner.close()
        result = await gw.audit_trail.verify()
    assert not result.ok and result.first_broken is not None and result.broken == 1
    assert result.first_broken.seq == start_seq
    reason = result.first_broken.reason
    assert reason.startswith(f"feed export {export_id} to partner {partner}: its manifest of")
    assert "does not match the digest its start record sealed" in reason


async def test_a_part_the_service_role_adds_to_a_feed_is_named_by_verify(
    scratch: PairRecord,  # noqa: F811
    tmp_path: Path, clock: PinnedClock,
) -> None:  # fmt: skip
    """The service role may insert manifest rows (an export keeps its own): one added to a
    finished feed, to make a person seem included, breaks the sealed digest."""
    async with gateway_on(scratch, tmp_path, clock) as gw:
        async with gw.db.primary.acquire() as conn:
            await add_person(conn, section=39, coverage_start=current_month())
        partner = f"feed-{uuid.uuid4().hex[:8]}"
        await gw.registry.add_partner(name=partner, cidrs=["10.0.0.0/8"])
        detail = await exported(gw, partner)
        at = await gw.db.primary.fetchval(
            "SELECT at FROM audit_feed_manifest WHERE export_id = $1::uuid", detail["export_id"]
        )
        await gw.db.primary.execute(
            "INSERT INTO audit_feed_manifest (at, export_id, part, national_ids)"
            " VALUES ($1, $2::uuid, 1, ARRAY[1101700230703::bigint])", at, detail["export_id"]
        )  # fmt: skip
        await gw.sealer.seal()
        result = await gw.audit_trail.verify()
    assert result.first_broken is not None
    assert result.first_broken.reason.startswith(f"feed export {detail['export_id']} to partner")
    assert "2 part(s), 2 ID(s) now; 1 when sent" in result.first_broken.reason
