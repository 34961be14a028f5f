"""The essential-work service (``bench/essential_app.py``): its server and a first answer.

Served as the bare endpoint is (uvicorn, one worker, no access log), on the bench pair: the
member query on the replica, the records on the primary. It admits the bench partner only.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from app.counter.entitlement import history_start
from app.counter.member_reads import MEMBER_SQL
from app.db.local_pair import SERVICE_ROLE, PairRecord
from app.domain.calendar import bangkok_date
from bench.essential_app import CREATE_TABLE, TABLE
from bench.gateway import Principals, Process, soap_envelope, start_uvicorn


async def _make_table(owner_dsn: str) -> None:
    """The records' table, as the schema's owner; the service role may insert into it."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute(CREATE_TABLE)
        await conn.execute(f"GRANT INSERT ON {TABLE} TO {SERVICE_ROLE}")
    finally:
        await conn.close()


def start_essential(pair: PairRecord, p: Principals, log: Path) -> Process:
    """uvicorn serving the essential-work service on a free port (as the gateway's role, on
    the bench pair), its pools open."""
    asyncio.run(_make_table(pair.owner_dsn))
    env = dict(os.environ) | {
        "ESSENTIAL_PRIMARY_DSN": pair.primary_dsn,
        "ESSENTIAL_REPLICA_DSN": pair.replica_dsn,
        "ESSENTIAL_MEMBER_SQL": MEMBER_SQL,
        "ESSENTIAL_SINCE": history_start(bangkok_date(datetime.now(UTC))).first_day.isoformat(),
        "ESSENTIAL_USERNAME": p.username,
        "ESSENTIAL_PASSWORD": p.password,
    }
    # /ready answers once the lifespan has opened the pools.
    return start_uvicorn("bench.essential_app:build", log, ready="/ready", env=env, factory=True)


def check_essential(base: str, p: Principals, national_id: str) -> None:
    """The service answers a seeded person's inquiry, naming them."""
    body = f"<sso:InquireContribution><sso:nationalId>{national_id}</sso:nationalId>"
    body += "</sso:InquireContribution>"
    answer = httpx.post(
        f"{base}/soap/v1",
        content=soap_envelope(p, body),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        timeout=10,
    )
    if answer.status_code != 200 or national_id not in answer.text:
        raise RuntimeError(f"essential service: {answer.status_code} {answer.text[:300]}")
