"""The system under test: the bench's own PostgreSQL pair, its data, and `ssogw serve`.

Everything runs through the real commands (``ssogw db up``, ``migrate``, ``seed``, ``serve``,
``partner add``, ``client add``) with ``SSOGW_DATA_DIR`` pointing at the bench's pair, so the
local pair under ``.data/`` is never touched.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as datetime_time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app.db.local_failover import synchronous
from app.db.local_pair import LocalPair, free_port, read_record
from app.domain.calendar import DEFAULT_CUTOFF, settlement_day

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"


def ssogw_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of an ``ssogw`` command on the bench pair."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSOGW_")}
    env["SSOGW_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def ssogw(data_dir: Path, *args: str, capture: bool = True) -> str:
    """Run ``ssogw ARGS`` on the bench pair; its stdout."""
    done = subprocess.run(
        [str(BIN / "ssogw"), *args],
        env=ssogw_env(data_dir),
        capture_output=capture,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ssogw {' '.join(args)} failed: {(done.stderr or '')[-2000:]}")
    return done.stdout or ""


def pair_dsns(data_dir: Path) -> tuple[str, str]:
    record = read_record(data_dir)
    if record is None:
        raise RuntimeError(f"no pair under {data_dir}")
    return record.primary_dsn, record.replica_dsn


#: The database parameters of production (deploy/k8s/postgres-cluster.yaml) that the local
#: pair's defaults differ in, so the figures are those of the database the service will meet.
PRODUCTION_PARAMETERS = {
    "shared_buffers": "2GB",
    "effective_cache_size": "6GB",
    "wal_compression": "lz4",
    # Not production's: the local pair archives WAL by copying it on the same disk (``ssogw db
    # backup``), which in production the Barman Cloud plugin ships off the machine. Off here,
    # so the figures stay comparable with the runs before archiving and a large seed does not
    # fill the disk with archived WAL.
    "archive_mode": "off",
}
_MARK = "# ssogw bench: the production parameters of deploy/k8s/postgres-cluster.yaml"


def pair_up(data_dir: Path) -> None:
    """``ssogw db up``, then the standby made synchronous, as production's standbys are
    (deploy/k8s/postgres-cluster.yaml, ``postgresql.synchronous``): a payment then waits for
    the standby to apply it (``SSOGW_PAYMENT_SYNCHRONOUS_COMMIT``), the audit trail's commits
    for it to flush them. ``ssogw db up`` alone makes a pair whose commits wait for nothing."""
    ssogw(data_dir, "db", "up")
    synchronous(LocalPair(data_dir))


def production_parameters(data_dir: Path) -> bool:
    """Give both servers of the bench pair the production parameters; True if it changed."""
    changed = False
    block = "\n".join(
        [_MARK, *(f"{key} = '{value}'" for key, value in PRODUCTION_PARAMETERS.items())]
    )
    for role in ("primary", "replica"):
        conf = data_dir / role / "postgresql.conf"
        text = conf.read_text()
        own = text
        if _MARK in text:  # given older parameters: the block (to its blank line) goes
            start = text.index(_MARK)
            end = text.find("\n\n", start)
            own = text[:start] + (text[end + 2 :] if end != -1 else "")
        wanted = own.rstrip("\n") + "\n\n" + block + "\n"
        if text != wanted:
            conf.write_text(wanted)
            changed = True
    return changed


#: What the gateway keeps beside the database about the database's audit trail (``ssogw
#: serve``'s defaults under the data dir): the chain's signed checkpoints and the spooled records.
AUDIT_BESIDE = ("audit-seals", "audit-spool")


async def recreate_database(data_dir: Path) -> None:
    """Drop and create the bench pair's database (owned by the owner role, as `ssogw db up`
    makes it), so every run seeds into empty tables; the checkpoints and spool of the dropped
    database's audit trail go with it (kept, the sealer finds the new chain short of the old
    checkpoints and reports a broken chain every minute of the run)."""
    pair = LocalPair(data_dir)
    record = read_record(data_dir)
    if record is None:
        raise RuntimeError(f"no pair under {data_dir}")
    await asyncio.to_thread(pair.drop_database, record.database)
    for name in AUDIT_BESIDE:
        shutil.rmtree(data_dir / name, ignore_errors=True)
    await asyncio.to_thread(pair.create_database, record.database)


@dataclass(frozen=True, slots=True)
class SeedFigures:
    persons: int
    months: int
    seconds: float
    workers: int

    @property
    def persons_per_s(self) -> float:
        return self.persons / self.seconds

    @property
    def rows_per_s(self) -> float:
        return (self.persons + self.months) / self.seconds


def seed(data_dir: Path, persons: int, seed_no: int, workers: int | None) -> SeedFigures:
    """`ssogw seed` into the empty database, timed by the command itself."""
    args = ["seed", "--persons", str(persons), "--seed", str(seed_no), "--json", "--quiet"]
    if workers:
        args += ["--workers", str(workers)]
    report = json.loads(ssogw(data_dir, *args))
    return SeedFigures(
        persons=report["inserted"],
        months=0,
        seconds=report["seconds"],
        workers=workers or min(4, os.cpu_count() or 1),
    )


async def count_months(data_dir: Path) -> int:
    primary, _ = pair_dsns(data_dir)
    conn = await asyncpg.connect(primary)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM paid_months"))
    finally:
        await conn.close()


# --- the service
class Process:
    """A child process serving HTTP on a port of its own; its RSS from /proc."""

    def __init__(self, args: list[str], *, env: dict[str, str], log: Path, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            args, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def wait_ready(self, path: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.base} exited with {self.proc.returncode}")
            try:
                if httpx.get(self.base + path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.base}{path} did not answer 200 in {timeout_s:.0f} s")

    def wait_workers(self, workers: int, timeout_s: float = 60.0) -> None:
        """Wait until ``workers`` workers serve (`ssogw serve --workers`: its /metrics)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.base} exited with {self.proc.returncode}")
            try:
                if f"ssogw_workers_serving {workers}.0" in httpx.get(self.base + "/metrics").text:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.base}: {workers} workers did not serve in {timeout_s:.0f} s")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def start_gateway(data_dir: Path, log: Path, *, workers: int = 1, **settings: str) -> Process:
    """`ssogw serve --workers N` (one by default: one process, its pid the server's) on a free
    port, ready (every worker, when there are more)."""
    port = free_port()
    env = ssogw_env(data_dir, SSOGW_SHUTDOWN_DRAIN_S="0", **settings)
    args = [str(BIN / "ssogw"), "serve", "--port", str(port), "--workers", str(workers)]
    proc = Process(args, env=env, log=log, port=port)
    proc.wait_ready("/readyz")
    if workers > 1:
        proc.wait_workers(workers)
    return proc


def start_uvicorn(
    app: str, log: Path, *, ready: str, env: dict[str, str] | None = None, factory: bool = False
) -> Process:
    """``app`` under uvicorn with the settings `ssogw serve` uses (one worker, no access log) on
    a free port, once ``ready`` answers 200 (stopped again if it never does)."""
    port = free_port()
    args = [
        str(BIN / "uvicorn"), app, *(["--factory"] if factory else []),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--no-access-log", "--log-level", "warning", "--no-server-header",
    ]  # fmt: skip
    proc = Process(args, env=env if env is not None else dict(os.environ), log=log, port=port)
    try:
        proc.wait_ready(ready)
    except BaseException:
        proc.stop()
        raise
    return proc


def start_bare(log: Path) -> Process:
    """bench/bare_app.py under uvicorn with the settings `ssogw serve` uses (one worker)."""
    return start_uvicorn("bench.bare_app:app", log, ready="/const")


# --- principals and candidates
@dataclass(frozen=True, slots=True)
class Principals:
    username: str
    password: str
    token: str


def lua_env(p: Principals, *, persons: int, seed: int) -> dict[str, str]:
    """What the Lua scripts read (bench/lua/common.lua): the principals and the seeded IDs."""
    return {
        "BENCH_USERNAME": p.username,
        "BENCH_PASSWORD": p.password,
        "BENCH_TOKEN": p.token,
        "BENCH_PERSONS": str(persons),
        "BENCH_SEED": str(seed),
    }


async def register(data_dir: Path, run_id: str) -> Principals:
    """A bench partner (rate limit far above any load: the registry's most, 100,000/s) and a
    bench client with scope counter."""
    partner = json.loads(
        ssogw(
            data_dir,
            "partner",
            "add",
            f"bench-{run_id}",
            "--cidr",
            "127.0.0.1/32",
            "--rate-limit",
            "100000",  # the most the registry takes (MAX_RATE_LIMIT)
            "--json",
        )
    )
    client = json.loads(
        ssogw(data_dir, "client", "add", f"bench-{run_id}", "--scopes", "counter", "--json")
    )
    # `ssogw client add` has no --rate-limit; the column default (200/s) would throttle the run.
    primary, _ = pair_dsns(data_dir)
    conn = await asyncpg.connect(primary)
    try:
        await conn.execute(
            "UPDATE api_clients SET rate_limit = 100000 WHERE name = $1", f"bench-{run_id}"
        )
    finally:
        await conn.close()
    return Principals(partner["username"], partner["password"], client["token"])


CANDIDATES = """
WITH cur AS (SELECT date_trunc('month', now() AT TIME ZONE 'Asia/Bangkok')::date AS m)
SELECT p.national_id, r.amount_satang, to_char(cur.m, 'YYYY-MM') AS month
  FROM insured_persons p TABLESAMPLE SYSTEM ($2) CROSS JOIN cur
 CROSS JOIN LATERAL (
       SELECT amount_satang FROM contribution_rates r
        WHERE r.section = 40 AND r.s40_option = p.s40_option AND r.first_month <= cur.m
          AND (r.last_month IS NULL OR r.last_month >= cur.m)
        ORDER BY r.first_month DESC, r.id DESC LIMIT 1) r
 WHERE p.section = 40 AND p.status = 'active' AND p.option_changed_on IS NULL
   AND p.effective_date <= cur.m
   AND NOT EXISTS (SELECT 1 FROM paid_months m
                    WHERE m.national_id = p.national_id AND m.section = 40 AND m.month >= cur.m)
 ORDER BY random()
 LIMIT $1
"""


#: The share of ``insured_persons``' pages (TABLESAMPLE SYSTEM) the first look samples: reading
#: the whole table took 28–34 s of each probe (session 27). A look that finds too few samples
#: more, by the yield it found, up to the whole table.
FIRST_SAMPLE_PERCENT = 1.0


async def confirm_candidates(data_dir: Path, count: int) -> list[str]:
    """Section 40 members whose current month is payable now, as "nationalId amount month"."""
    primary, _ = pair_dsns(data_dir)
    conn = await asyncpg.connect(primary)
    try:
        percent = FIRST_SAMPLE_PERCENT
        while True:
            rows = await conn.fetch(CANDIDATES, count, percent, timeout=600)
            if len(rows) >= count or percent >= 100:
                break
            percent = min(100.0, percent * max(2.0, 1.5 * count / max(1, len(rows))))
    finally:
        await conn.close()
    return [
        f"{r['national_id']} {r['amount_satang'] // 100}.{r['amount_satang'] % 100:02d}"
        f" {r['month']}"
        for r in rows
    ]


# --- one request from Python, to check the path works before load is put on it
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"


def soap_envelope(p: Principals, body: str) -> bytes:
    nonce = os.urandom(16)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(
        hashlib.sha1(nonce + created.encode() + p.password.encode()).digest()
    ).decode()
    return (
        '<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope'
        ' xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:sso="urn:sso:contribution:v1"><soapenv:Header>'
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
        f"<wsse:Username>{p.username}</wsse:Username>"
        f'<wsse:Password Type="{PROFILE}#PasswordDigest">{digest}</wsse:Password>'
        f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce>"
        f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"
        f"</soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    ).encode()


def check_soap_inquiry(base: str, p: Principals, national_id: str) -> None:
    body = (
        "<sso:InquireContribution><sso:nationalId>"
        f"{national_id}</sso:nationalId></sso:InquireContribution>"
    )
    answer = httpx.post(
        f"{base}/soap/v1",
        content=soap_envelope(p, body),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        timeout=10,
    )
    if answer.status_code != 200 or b"InquireContributionResponse" not in answer.content:
        raise RuntimeError(f"SOAP inquiry check failed: {answer.status_code} {answer.text[:600]}")


def check_rest_inquiry(base: str, p: Principals, national_id: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{base}/api/v1/insured/{national_id}/contributions",
        headers={"Authorization": f"Bearer {p.token}"},
        timeout=10,
    )
    if answer.status_code != 200:
        raise RuntimeError(f"REST inquiry check failed: {answer.status_code} {answer.text[:600]}")
    result: dict[str, Any] = answer.json()
    return result


def bench_cutoff() -> datetime_time:
    """The settlement cut-off the Lua scripts assume: ``BENCH_CUTOFF`` ("HH:MM", as
    bench/lua/common.lua reads it), else the gateway's default. Set it to the gateway's
    ``SSOGW_SETTLEMENT_CUTOFF`` when that is changed."""
    raw = os.environ.get("BENCH_CUTOFF")
    return DEFAULT_CUTOFF if raw is None else datetime.strptime(raw, "%H:%M").time()


def check_soap_confirm(base: str, p: Principals, candidate: str, txn_id: str) -> None:
    nid, amount, month = candidate.split()
    now = datetime.now(UTC)
    # The business day the gateway decides (after the cut-off, the next): any other is refused.
    day = settlement_day(now, bench_cutoff()).isoformat()
    paid_at = (now + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%S+07:00")
    body = (
        f"<sso:ConfirmPayment><sso:partnerTxnId>{txn_id}</sso:partnerTxnId>"
        f"<sso:nationalId>{nid}</sso:nationalId><sso:section>40</sso:section>"
        f"<sso:months><sso:month>{month}</sso:month></sso:months><sso:amount>{amount}</sso:amount>"
        f"<sso:businessDate>{day}</sso:businessDate><sso:paidAt>{paid_at}</sso:paidAt>"
        "</sso:ConfirmPayment>"
    )
    answer = httpx.post(
        f"{base}/soap/v1",
        content=soap_envelope(p, body),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        timeout=10,
    )
    if answer.status_code != 200 or b"ConfirmPaymentResponse" not in answer.content:
        raise RuntimeError(f"SOAP confirm check failed: {answer.status_code} {answer.text[:600]}")


def metrics_text(base: str) -> str:
    return httpx.get(f"{base}/metrics", timeout=10).text
