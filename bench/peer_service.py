"""The spyne peer (``bench/peer/spyne_app.py``): its virtualenv, its server, a first answer.

Issue 20 asks for the gateway's figures beside those of the service a Python team would pick:
spyne on gunicorn with one sync worker, doing the same inquiry read on the same replica. It
lives in ``bench/out/peer-venv`` (``bench/peer/requirements.txt``, pinned), apart from the
project's virtualenv, so spyne never becomes a dependency of the gateway.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx

from app.counter.entitlement import history_start
from app.counter.member_reads import MEMBER_SQL
from app.db.local_pair import free_port
from app.domain.calendar import bangkok_date
from bench.gateway import OUT, ROOT, Process

PEER_DIR = ROOT / "bench" / "peer"
VENV = OUT / "peer-venv"
REQUIREMENTS = PEER_DIR / "requirements.txt"


def ensure_venv() -> Path:
    """The peer's virtualenv, created or brought up to ``requirements.txt``; its bin dir."""
    stamp = VENV / ".installed"
    wanted = REQUIREMENTS.read_text()
    if not stamp.exists() or stamp.read_text() != wanted:
        if not (VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r",
             str(REQUIREMENTS)],
            check=True,
        )  # fmt: skip
        stamp.write_text(wanted)
    return VENV / "bin"


def psycopg_sql(sql: str) -> str:
    """asyncpg's ``$1`` placeholders as psycopg2's named ``%(p1)s`` (one may recur)."""
    return re.sub(r"\$(\d+)", r"%(p\1)s", sql.replace("%", "%%"))


def start_peer(replica_dsn: str, log: Path) -> Process:
    """gunicorn, one sync worker, serving the peer on a free port, ready."""
    bin_dir = ensure_venv()
    port = free_port()
    since = history_start(bangkok_date(datetime.now(UTC))).first_day
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "PEER_MEMBER_SQL": psycopg_sql(MEMBER_SQL),
        "PEER_REPLICA_DSN": replica_dsn,
        "PEER_SINCE": since.isoformat(),
    }
    args = [
        str(bin_dir / "gunicorn"),
        "--workers", "1", "--worker-class", "sync", "--bind", f"127.0.0.1:{port}",
        "--chdir", str(PEER_DIR), "--log-level", "warning", "spyne_app:application",
    ]  # fmt: skip
    proc = Process(args, env=env, log=log, port=port)
    proc.wait_ready("/soap?wsdl")
    return proc


def check_peer(base: str, national_id: str) -> None:
    """The peer answers the SOAP and the JSON inquiry for a seeded person with that person."""
    body = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:p="urn:sso:peer:v1"><soapenv:Body><p:InquireContribution>'
        f"<p:nationalId>{national_id}</p:nationalId><p:storeId>S</p:storeId>"
        "<p:terminalId>T</p:terminalId></p:InquireContribution></soapenv:Body>"
        "</soapenv:Envelope>"
    )
    soap = httpx.post(
        f"{base}/soap",
        content=body,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"InquireContribution"'},
        timeout=10,
    )
    if soap.status_code != 200 or national_id not in soap.text:
        raise RuntimeError(f"peer SOAP inquiry: {soap.status_code} {soap.text[:300]}")
    rest = httpx.get(
        f"{base}/rest/InquireContribution",
        params={"nationalId": national_id, "storeId": "S", "terminalId": "T"},
        timeout=10,
    )
    if rest.status_code != 200 or national_id not in rest.text:
        raise RuntimeError(f"peer JSON inquiry: {rest.status_code} {rest.text[:300]}")
