"""The served process answers /readyz; demo data is deterministic and valid."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date

import asyncpg
import httpx
import pytest

from app.db.local_pair import LocalPair, PairRecord, free_port
from app.domain.national_id import validate_national_id
from app.insured.demo_data import SeedPlan, former_s39, generate, load, national_id_for
from app.settings import Settings
from tests.reliability.gateway_process import dies_with_parent
from tests.support.scratch_db import migrated_template

pytestmark = pytest.mark.db


def test_a_server_subprocess_becomes_ready(settings: Settings) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SSOGW_PRIMARY_DSN": settings.primary_dsn or "",
        "SSOGW_REPLICA_DSNS": ",".join(settings.replica_dsns),
        # One of the session's instances: its seal key and checkpoints are the session's, and
        # its spool is its own (beside the in-process gateways', by its instance id).
        "SSOGW_DATA_DIR": str(settings.data_dir),
        "SSOGW_INSTANCE_ID": "smoke",
        "SSOGW_HTTP_PORT": str(port),
        "SSOGW_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from app.cli.main import main; main(['serve'])"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=dies_with_parent(),
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code
                if status == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_every_generated_id_passes_the_checksum_and_is_unique() -> None:
    ids = [national_id_for(i, seed=7) for i in range(20_000)]
    assert len(set(ids)) == len(ids)
    for nid in ids:
        assert validate_national_id(nid) == nid


def test_the_same_seed_gives_the_same_data() -> None:
    plan = SeedPlan(persons=2_000, seed=42, as_of=date(2026, 11, 26))
    first = list(generate(plan))
    assert first == list(generate(plan))
    assert first != list(generate(SeedPlan(persons=2_000, seed=43, as_of=plan.as_of)))
    sections = {person[4] for person, _ in first}
    statuses = {person[5] for person, _ in first}
    assert sections == {39, 40} and {"active", "terminated"} <= statuses


async def test_demo_data_loads_section_33_history_and_ended_memberships(
    pg_pair: tuple[LocalPair, PairRecord],
) -> None:
    """Into an empty database (COPY straight in), then again with more persons (only the new
    ones, and only their ended memberships, are added)."""
    _, record = pg_pair
    plan = SeedPlan(persons=1_500, seed=5, as_of=date(2026, 11, 26))
    bigger = replace(plan, persons=2_000)
    expected = {
        n: sum(
            len(former_s39(p, share=plan.former_s39_share))
            for p, _ in generate(replace(plan, persons=n))
        )
        for n in (plan.persons, bigger.persons)
    }
    assert 0 < expected[plan.persons] < expected[bigger.persons]
    async with migrated_template(record, "seed") as database:
        assert await load(database.owner_dsn, plan) == plan.persons
        assert await load(database.owner_dsn, bigger) == bigger.persons - plan.persons
        conn = await asyncpg.connect(database.owner_dsn)
        try:
            s39 = await conn.fetchrow(
                "SELECT count(*) AS persons, count(s33_months) AS histories,"
                " count(*) FILTER (WHERE s39_eligibility = 'eligible'"
                " AND s39_applied_on > s33_employment_ended_on) AS eligible"
                " FROM insured_persons WHERE section = 39"
            )
            closed = await conn.fetchval("SELECT count(*) FROM closed_memberships")
            behind_s40 = await conn.fetchval(
                "SELECT count(*) FROM closed_memberships c JOIN insured_persons p"
                " USING (national_id) WHERE p.section = 40 AND c.section = 39"
                " AND c.ended_month <= p.effective_date"
            )
        finally:
            await conn.close()
    assert s39["persons"] > 0 and s39["persons"] == s39["histories"] == s39["eligible"]
    assert closed == behind_s40 == expected[bigger.persons]
