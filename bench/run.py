"""`make bench`: the gateway's performance, measured side by side on one machine, in one run.

Steps (each prints what it does; the whole run is bounded, about 30 minutes at 1,000,000
persons on a 2-core machine):

1. OS tools (wrk) and a self-check of the Lua SHA-1/Base64/PasswordDigest and national-ID code
   against Python's;
2. the bench's own PostgreSQL pair under ``bench/out/data`` (``ssogw db up``), its database
   dropped and created again, ``ssogw migrate``, then ``ssogw seed --persons N`` (timed: a
   figure); then, untimed, the pair settled as a serving database would be (``bench/settle.py``:
   VACUUM, CHECKPOINT, the standby caught up, the read relations in both servers' page cache);
3. ``ssogw serve --workers 1`` and ``bench/bare_app.py`` (the same uvicorn settings);
   the spyne peer (``bench/peer``: gunicorn, one sync worker, the same read on the same replica;
   ``--skip-peer`` leaves it out); a bench partner and client; the essential-work service
   (``bench/essential_app.py``: an inquiry's essential work alone, ``--skip-essential``);
4. the machine's own two-process figure (``bench/machine_scaling.py``: plain Python alone,
   then in two processes at once; again before the all-cores run); closed loop (wrk,
   ``--connections`` connections): the bare constant endpoint, the asyncpg primary-key lookup
   without HTTP (``bench/pk_lookup.py``), SOAP InquireContribution and, right after it, the
   essential-work service's SOAP inquiry, REST inquiry, SOAP ConfirmPayment (each confirm a
   different person and transaction), the peer's SOAP and JSON inquiry; then SOAP
   InquireContribution on all cores: ``ssogw serve --workers N`` (N: ``--all-cores-workers``,
   else the CPUs this process may use), the machine's throughput beside the one-worker figure
   (``--skip-all-cores`` leaves it out);
5. open loop at half of each one's maximum: p50/p99 from the time each request was due;
6. a soak until the service has answered ``--soak-requests`` (1,000,000) requests, its RSS
   sampled along the way;
7. bulk: settlement match of 1,000,000 lines (``bench/bench_settlement.py``), ``audit lookups``
   over ``--audit-rows`` audit records (``bench/audit_rows.py``, a separate store);
8. one table on stdout, and the same appended to ``bench/RESULTS.md`` with the machine and commit.

    .venv/bin/python -m bench.run [--persons 1000000] [--duration 30] [--audit-rows 100000000]
                                  [--skip-bulk] [--label TEXT] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.db.local_pair import read_record
from app.workers.cpus import usable_cpus
from bench import (
    cpu_split,
    essential_service,
    gateway,
    machine_scaling,
    peer_service,
    report,
    settle,
)
from bench.gateway import OUT, ROOT, Principals, Process, lua_env
from bench.wrk import WrkResult, lua_selfcheck, run_wrk

# A person's ID is drawn from this many seeded rows; open-loop runs send at this share of the
# measured maximum.
HALF = 0.5


def say(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- 1. tools and self-check
def ensure_tools() -> None:
    subprocess.run([str(ROOT / "scripts" / "ensure-os-tools")], check=True)
    if subprocess.run(["which", "wrk"], capture_output=True, check=False).returncode != 0:
        raise SystemExit("wrk is not installed (run scripts/ensure-os-tools as root)")


def selfcheck() -> int:
    """Compare the Lua digest, national-ID and business-day code with Python's on random
    inputs (and on both sides of the cut-off and of midnight, Bangkok)."""
    from app.admission.credential_vault import password_digest
    from app.domain.calendar import settlement_day
    from app.insured.demo_data import national_id_for

    rng = random.Random()
    cases: list[str] = []
    expected: list[str] = []
    for _ in range(50):
        nonce = rng.randbytes(rng.choice((16, 20, 32)))
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S") + rng.choice(("Z", ".123Z"))
        password = "".join(rng.choices("abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_", k=32))
        cases.append(f"digest {nonce.hex()} {created} {password}")
        expected.append(password_digest(nonce=nonce, created=created, password=password))
    for index in [0, 1, 12_999_999, *(rng.randrange(13_000_000) for _ in range(200))]:
        seed_no = rng.randrange(1, 100)
        cases.append(f"nid {index} {seed_no}")
        expected.append(national_id_for(index, seed=seed_no))
    cutoff_at = gateway.bench_cutoff()  # what the Lua assumes (BENCH_CUTOFF), at Bangkok's +7
    utc_hour = (cutoff_at.hour - 7) % 24
    cutoff = int(
        datetime.now(UTC).replace(hour=utc_hour, minute=cutoff_at.minute, second=0).timestamp()
    )
    midnight = int(datetime.now(UTC).replace(hour=17, minute=0, second=0).timestamp())
    instants = [t + d for t in (cutoff, midnight) for d in (-1, 0, 1)]  # Bangkok's
    instants += [cutoff + rng.randrange(-40 * 86400, 40 * 86400) for _ in range(40)]
    for epoch in instants:
        cases.append(f"bday {epoch} 0")
        expected.append(settlement_day(datetime.fromtimestamp(epoch, UTC), cutoff_at).isoformat())
    got = lua_selfcheck(cases)
    wrong = [(c, e, g) for c, e, g in zip(cases, expected, got, strict=False) if e != g]
    if len(got) != len(expected) or wrong:
        raise SystemExit(f"Lua self-check failed: {wrong[:3]} ({len(got)} of {len(expected)})")
    return len(cases)


# --- the run
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir: Path = args.data_dir
        self.run_id = datetime.now().strftime("%Y%m%d%H%M%S")
        self.figures: dict[str, Any] = {"run_id": self.run_id, "args": vars(args).copy()}
        self.figures["args"] = {
            k: str(v) if isinstance(v, Path) else v for k, v in self.figures["args"].items()
        }
        self.service_requests = 0
        self.rss: list[tuple[int, float]] = []
        self.rss_times: list[float] = []  # soak seconds of the soak's RSS samples
        self.invocations = 0
        self.candidates: list[str] = []
        self.gw: Process | None = None
        self.bare: Process | None = None
        self.peer: Process | None = None
        self.essential: Process | None = None
        self.principals: Principals | None = None

    # --- environment of the Lua scripts
    def lua_env(self, **extra: str) -> dict[str, str]:
        p = self.principals
        assert p is not None
        return {
            **lua_env(p, persons=self.args.persons, seed=self.args.seed),
            "BENCH_RUN": f"b{self.run_id}-{self.invocations}",
            **extra,
        }

    def candidates_file(self, count: int) -> Path:
        """The next ``count`` unused confirm candidates, in a file for one wrk run."""
        if len(self.candidates) < count:
            raise SystemExit(
                f"{len(self.candidates):,} payable persons left, {count:,} needed: raise"
                " --candidates or --persons"
            )
        taken, self.candidates = self.candidates[:count], self.candidates[count:]
        path = OUT / f"candidates-{self.invocations}.txt"
        path.write_text("\n".join(taken) + "\n")
        return path

    def wrk(
        self,
        script: str,
        base: str,
        *,
        duration: float,
        rate: float | None = None,
        count: bool = True,
        open_threads: int | None = None,
        **env: str,
    ) -> WrkResult:
        a = self.args
        self.invocations += 1
        if script == "soap_confirm":
            most = (rate * 1.2 + 50) if rate else a.confirm_cap
            env["BENCH_CANDIDATES"] = str(self.candidates_file(int(most * (duration + 1))))
        if rate is None:
            threads, conns = a.threads, a.connections
        else:
            assert open_threads is not None, "an open loop names its wrk threads (Bench.open)"
            threads, conns = open_threads, a.open_connections
        result = run_wrk(
            script,
            base,
            threads=threads,
            connections=conns,
            duration_s=duration,
            env=self.lua_env(**env),
            rate=rate,
        )
        if count:
            self.service_requests += result.requests
        return result

    def sample_rss(self) -> float:
        assert self.gw is not None
        rss = self.gw.rss_mb()
        self.rss.append((self.service_requests, rss))
        return rss

    # --- steps
    def prepare(self) -> None:
        a = self.args
        say(f"bench pair under {self.data_dir}")
        gateway.pair_up(self.data_dir)
        if gateway.production_parameters(self.data_dir):
            say("bench pair: production database parameters (shared_buffers 2GB, ...); restart")
            gateway.ssogw(self.data_dir, "db", "down")
            gateway.pair_up(self.data_dir)
        say("bench pair: the standby synchronous, as production's (payments wait for it)")
        if a.reuse and (self.data_dir / "seeded.json").exists():
            marker = json.loads((self.data_dir / "seeded.json").read_text())
            if marker.get("persons") == a.persons and marker.get("seed") == a.seed:
                say(f"reusing the seeded database ({a.persons:,} persons); seeding not measured")
                self.figures["seed"] = marker | {"reused": True}
                return
        (self.data_dir / "seeded.json").unlink(missing_ok=True)
        asyncio.run(gateway.recreate_database(self.data_dir))
        gateway.ssogw(self.data_dir, "migrate")
        say(f"ssogw seed --persons {a.persons:,} (timed)")
        figures = gateway.seed(self.data_dir, a.persons, a.seed, a.workers)
        months = asyncio.run(gateway.count_months(self.data_dir))
        seeded = {
            "persons": figures.persons,
            "seed": a.seed,
            "paid_months": months,
            "seconds": figures.seconds,
            "workers": figures.workers,
            "persons_per_s": round(figures.persons / figures.seconds),
            "rows_per_s": round((figures.persons + months) / figures.seconds),
        }
        say(
            f"seeded {figures.persons:,} persons + {months:,} paid months in"
            f" {figures.seconds:.1f} s ({seeded['persons_per_s']:,} persons/s)"
        )
        (self.data_dir / "seeded.json").write_text(json.dumps(seeded))
        self.figures["seed"] = seeded

    def settle(self) -> None:
        """The freshly seeded (or reused) pair brought to a serving database's state
        (``bench.settle``); untimed."""
        seconds = asyncio.run(settle.settle(self.data_dir, say))
        self.figures["settle_seconds"] = round(seconds, 1)
        say(f"settled in {seconds:.1f} s")

    def start(self) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        say("starting ssogw serve and the bare app")
        self.gw = gateway.start_gateway(self.data_dir, OUT / "serve.log")
        self.bare = gateway.start_bare(OUT / "bare.log")
        if not self.args.skip_peer:
            say("starting the spyne peer (gunicorn, one sync worker; bench/peer)")
            replica = gateway.pair_dsns(self.data_dir)[1]
            self.peer = peer_service.start_peer(replica, OUT / "peer.log")
        self.principals = asyncio.run(gateway.register(self.data_dir, self.run_id))
        if not self.args.skip_essential:
            say("starting the essential-work service (bench/essential_app.py)")
            pair = read_record(self.data_dir)
            assert pair is not None  # the pair is up (prepare)
            self.essential = essential_service.start_essential(
                pair, self.principals, OUT / "essential.log"
            )
        self.figures["rss_start_mb"] = round(self.sample_rss(), 1)

    def stop(self) -> None:
        for proc in (self.gw, self.bare, self.peer, self.essential):
            if proc is not None:
                proc.stop()

    def checks(self) -> None:
        from app.insured.demo_data import national_id_for

        assert self.gw is not None and self.principals is not None
        nid = national_id_for(random.randrange(self.args.persons), seed=self.args.seed)
        gateway.check_soap_inquiry(self.gw.base, self.principals, nid)
        gateway.check_rest_inquiry(self.gw.base, self.principals, nid)
        if self.peer is not None:
            peer_service.check_peer(self.peer.base, nid)
        if self.essential is not None:
            essential_service.check_essential(self.essential.base, self.principals, nid)
        self.service_requests += 2

    def closed(
        self,
        name: str,
        script: str,
        base: str,
        *,
        count: bool | None = None,
        process: Process | None = None,
        **env: str,
    ) -> WrkResult:
        a = self.args
        if count is None:  # requests the one-worker service answered (the soak's target)
            count = base not in self._others()
        say(
            f"{name}: warm-up {a.warmup:.0f} s, then closed loop {a.duration:.0f} s"
            f" ({a.connections} connections)"
        )
        self.wrk(script, base, duration=a.warmup, count=count, rate=None, open_threads=None, **env)
        serving = process or next(
            p for p in (self.gw, self.bare, self.peer, self.essential) if p and p.base == base
        )
        servers = cpu_split.postmasters(self.data_dir)
        before = cpu_split.mark(serving.proc.pid, servers)
        result = self.wrk(
            script, base, duration=a.duration, count=count, rate=None, open_threads=None, **env
        )
        after = cpu_split.mark(serving.proc.pid, servers)
        cpu = cpu_split.split(before, after, result.requests)
        self.figures.setdefault("cpu", {})[name] = cpu
        say(
            f"  {result.rps:,.0f} requests/s, p50 {result.latency_ms['p50']:.2f} ms,"
            f" p99 {result.latency_ms['p99']:.2f} ms, errors {result.errors}"
        )
        say(
            f"  CPU per request: service {cpu['service_us']} µs ({cpu['service_cores']} cores),"
            f" PostgreSQL {cpu['postgres_us']} µs, wrk {cpu['wrk_us']} µs, other"
            f" {cpu['other_us']} µs (kernel threads {cpu['kernel_us']} µs); machine"
            f" {cpu['busy_pct']} % busy"
        )
        return result

    def _others(self) -> set[str]:
        """The bases of the servers that are not the one-worker gateway."""
        return {p.base for p in (self.bare, self.peer, self.essential) if p is not None}

    def open(self, name: str, script: str, base: str, rate: float, **env: str) -> WrkResult:
        a = self.args
        count = base not in self._others()
        # The due times travel as X-Request-Id, which only the gateway echoes: elsewhere each
        # connection keeps a timetable of its own (bench.wrk).
        threads = min(a.open_threads, a.open_connections) if count else a.open_connections
        say(
            f"{name}: open loop at {rate:,.0f} requests/s for {a.open_duration:.0f} s"
            f" ({a.open_connections} connections on the fixed timetables of {threads} wrk"
            " threads)"
        )
        result = self.wrk(
            script,
            base,
            duration=a.open_duration,
            rate=rate,
            count=count,
            open_threads=threads,
            **env,
        )
        ol = result.open_loop or {}
        say(
            f"  achieved {result.rps:,.0f}/s, p50 {ol.get('p50_us', 0) / 1000:.2f} ms,"
            f" p99 {ol.get('p99_us', 0) / 1000:.2f} ms, statuses {ol.get('statuses')},"
            f" late sends {ol.get('late_sends')}, resent {ol.get('resent')}"
        )
        return result

    def pk_lookup(self, *, member: bool = False) -> dict[str, Any]:
        _, replica = gateway.pair_dsns(self.data_dir)
        args = [
            sys.executable,
            "-m",
            "bench.pk_lookup",
            "--dsn",
            replica,
            "--persons",
            str(self.args.persons),
            "--seed",
            str(self.args.seed),
            "--duration",
            str(self.args.pk_duration),
            "--concurrency",
            str(self.args.connections),
            "--json",
        ] + (["--member-query"] if member else [])
        done = subprocess.run(args, capture_output=True, text=True, check=True, cwd=ROOT)
        result: dict[str, Any] = json.loads(done.stdout)
        say(
            f"  asyncpg {result['query']} lookup: {result['qps']:,.0f} queries/s,"
            f" p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms"
        )
        return result

    def http(self) -> None:
        a = self.args
        assert self.gw is not None and self.bare is not None
        gw, bare = self.gw.base, self.bare.base
        self.candidates = asyncio.run(gateway.confirm_candidates(self.data_dir, a.candidates))
        self.figures["candidates"] = len(self.candidates)
        assert self.principals is not None
        self.checks()
        check = self.candidates.pop()
        gateway.check_soap_confirm(gw, self.principals, check, f"b{self.run_id}-check")
        self.service_requests += 1

        self.machine_scaling("before the closed loops")
        closed: dict[str, Any] = {}
        closed["bare"] = self.closed("bare FastAPI constant", "bare", bare)
        say("asyncpg lookups without HTTP (replica, pool 10)")
        self.figures["pk_lookup"] = self.pk_lookup()
        self.figures["member_lookup"] = self.pk_lookup(member=True)
        closed["soap_inquiry"] = self.closed("SOAP InquireContribution", "soap_inquiry", gw)
        if self.essential is not None:  # next to the gateway's: a host's share moves in a run
            closed["essential"] = self.closed(
                "essential-work SOAP inquiry", "soap_inquiry", self.essential.base
            )
        closed["rest_inquiry"] = self.closed("REST inquiry", "rest_inquiry", gw)
        closed["soap_confirm"] = self.closed("SOAP ConfirmPayment", "soap_confirm", gw)
        if self.peer is not None:
            peer = self.peer.base
            closed["peer_soap"] = self.closed("spyne peer SOAP inquiry", "peer_soap_inquiry", peer)
            closed["peer_rest"] = self.closed("spyne peer JSON inquiry", "peer_rest_inquiry", peer)
        if not a.skip_all_cores:
            closed["soap_inquiry_all_cores"] = self.all_cores()
        self.figures["rss_after_closed_mb"] = round(self.sample_rss(), 1)

        opened: dict[str, Any] = {}
        opened["bare"] = self.open("bare FastAPI constant", "bare", bare, closed["bare"].rps * HALF)
        opened["soap_inquiry"] = self.open(
            "SOAP InquireContribution", "soap_inquiry", gw, closed["soap_inquiry"].rps * HALF
        )
        opened["rest_inquiry"] = self.open(
            "REST inquiry", "rest_inquiry", gw, closed["rest_inquiry"].rps * HALF
        )
        opened["soap_confirm"] = self.open(
            "SOAP ConfirmPayment", "soap_confirm", gw, closed["soap_confirm"].rps * HALF
        )
        self.figures["closed"] = {k: summary(v) for k, v in closed.items()}
        self.figures["open"] = {k: summary(v) for k, v in opened.items()}
        metrics = gateway.metrics_text(gw)
        self.figures["reads"] = read_paths(metrics)
        self.figures["audit_commits"] = audit_commits(metrics)

    def machine_scaling(self, when: str) -> None:
        """What two processes of plain Python get of the machine now (``bench.machine_scaling``):
        the host's share varies within a run, so it is taken before the closed loops and again
        just before the all-cores run."""
        say(f"the machine, {when}: plain Python alone, then two processes at once")
        figure = machine_scaling.measure()
        self.figures.setdefault("machine_scaling", {})[when] = figure
        say(f"  two processes: {figure['ratio']}× one (rounds {figure['ratio_min']}–"
            f"{figure['ratio_max']})")  # fmt: skip

    def all_cores(self) -> WrkResult:
        """SOAP InquireContribution on ``ssogw serve --workers N``: the machine's throughput."""
        self.machine_scaling("before the all-cores run")
        workers = self.args.all_cores_workers or usable_cpus()
        self.figures["all_cores_workers"] = workers
        say(f"starting ssogw serve --workers {workers} (all cores)")
        # An instance of its own beside the one-worker service (its spools are its own).
        group = gateway.start_gateway(
            self.data_dir, OUT / "serve-all-cores.log", workers=workers,
            SSOGW_INSTANCE_ID="bench-all-cores",
        )  # fmt: skip
        try:
            return self.closed(
                f"SOAP InquireContribution, {workers} workers", "soap_inquiry", group.base,
                count=False, process=group,
            )  # fmt: skip
        finally:
            group.stop()

    def soak(self) -> None:
        """Inquiries until the service has answered ``--soak-requests`` in all and the soak
        has lasted ``--soak-min-seconds`` (longer than the WS-Security nonce window, so the
        nonce cache is full by the end); RSS after each chunk. SOAP, SOAP, REST in turn."""
        a = self.args
        assert self.gw is not None
        scripts = ["soap_inquiry", "soap_inquiry", "rest_inquiry"]
        say(
            f"soak: until {a.soak_requests:,} requests and {a.soak_min_seconds:.0f} s"
            f" (now {self.service_requests:,}; RSS {self.sample_rss():.1f} MB)"
        )
        started, turn, passed = time.monotonic(), 0, None
        while (
            self.service_requests < a.soak_requests
            or time.monotonic() - started < a.soak_min_seconds
        ):
            result = self.wrk(scripts[turn % len(scripts)], self.gw.base, duration=a.soak_chunk)
            turn += 1
            rss = self.sample_rss()
            elapsed = time.monotonic() - started
            self.rss_times.append(elapsed)
            if passed is None and self.service_requests >= a.soak_requests:
                passed = {"requests": self.service_requests, "rss_mb": round(rss, 1)}
            say(
                f"  {elapsed:4.0f} s: {self.service_requests:,} requests answered,"
                f" RSS {rss:.1f} MB ({result.script} {result.rps:,.0f}/s,"
                f" errors {result.failed})"
            )
        self.figures["rss"] = [
            {"requests": n, "rss_mb": round(r, 1), "soak_s": round(t, 1)}
            for (n, r), t in zip(self.rss[-len(self.rss_times) :], self.rss_times, strict=True)
        ]
        self.figures["rss_at_target"] = passed
        self.figures["service_requests"] = self.service_requests

    def bulk(self) -> None:
        a = self.args
        if not a.skip_settlement:
            self.figures["settlement"] = settlement(self.data_dir, a.settlement_lines)
        if not a.skip_audit:
            from bench import audit_rows

            self.figures["audit"] = audit_rows.bench(
                rows=a.audit_rows, store=a.audit_dir, regenerate=a.audit_regenerate, say=say
            )


def summary(result: WrkResult) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "rps": round(result.rps, 1),
        "requests": result.requests,
        "p50_ms": round(result.latency_ms["p50"], 3),
        "p99_ms": round(result.latency_ms["p99"], 3),
        "errors": result.errors,
    }
    if result.open_loop is not None:
        ol = result.open_loop
        doc["open_loop"] = {
            "rate": ol["rate"],
            "samples": ol["samples"],
            "late_sends": ol["late_sends"],
            "unmatched": ol.get("unmatched", 0),
            "resent": ol.get("resent", 0),
            "p50_ms": ol["p50_us"] / 1000,
            "p90_ms": ol["p90_us"] / 1000,
            "p99_ms": ol["p99_us"] / 1000,
            "p999_ms": ol["p999_us"] / 1000,
            "max_ms": ol["max_us"] / 1000,
            "statuses": ol["statuses"],
            "first_error": ol["first_error"][:300],
        }
    return doc


def _sample(line: str) -> float:
    return float(line.rsplit(" ", 1)[1])


def read_paths(metrics: str) -> dict[str, float]:
    paths: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("ssogw_reads_total{"):
            label = line.split('path="', 1)[1].split('"', 1)[0]
            paths[label] = _sample(line)
    return paths


def audit_commits(metrics: str) -> dict[str, float]:
    """The audit group commits of the HTTP runs: how many, records per batch, commit time
    (mean, and the bucket bound under which 99 % of commits finished)."""
    buckets: list[tuple[float, float]] = []
    found: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("ssogw_audit_commit_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), _sample(line)))
        for name in ("commit_seconds_count", "commit_seconds_sum", "batch_size_sum"):
            if line.startswith(f"ssogw_audit_{name} "):
                found[name] = _sample(line)
    commits = found.get("commit_seconds_count", 0.0)
    if not commits:
        return {}
    p99 = next((bound for bound, below in sorted(buckets) if below >= 0.99 * commits), 0.0)
    return {
        "commits": commits,
        "records_per_commit": found.get("batch_size_sum", 0.0) / commits,
        "mean_ms": 1000 * found.get("commit_seconds_sum", 0.0) / commits,
        "p99_le_ms": 1000 * p99,
    }


def settlement(data_dir: Path, lines: int) -> dict[str, Any]:
    """bench/bench_settlement.py on the bench pair; the match time of its settlement step."""
    say(f"settlement: import and match {lines:,} lines (bench/bench_settlement.py)")
    done = subprocess.run(
        [
            sys.executable,
            "bench/bench_settlement.py",
            "--persons",
            str(lines),
            "--lines",
            str(lines),
        ],
        env=gateway.ssogw_env(data_dir),
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench_settlement.py failed: {done.stderr[-2000:]}")
    figures: dict[str, Any] = {"lines": lines, "output": done.stdout.strip().splitlines()}
    for line in figures["output"]:
        if line.startswith("settlement import + match:"):
            figures["seconds"] = float(line.split(":", 1)[1].split(" s", 1)[0])
        elif line.startswith("same file again:"):
            figures["again_seconds"] = float(line.split(":", 1)[1].split(" s", 1)[0])
    say(f"  matched in {figures.get('seconds')} s")
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000, help="seeded (13000000: full)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, help="ssogw seed --workers (default: its own)")
    parser.add_argument("--reuse", action="store_true", help="keep a database seeded alike")
    parser.add_argument("--data-dir", type=Path, default=OUT / "data")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads, closed loop")
    parser.add_argument("--connections", type=int, default=64, help="closed-loop connections")
    parser.add_argument("--open-connections", type=int, default=32, help="open loop")
    parser.add_argument(
        "--open-threads", type=int, default=2,
        help="open loop: wrk threads, each a timetable its connections share",
    )  # fmt: skip
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=30.0, help="closed loop, seconds")
    parser.add_argument("--open-duration", type=float, default=30.0)
    parser.add_argument("--pk-duration", type=float, default=15.0)
    parser.add_argument("--candidates", type=int, default=400_000, help="persons to confirm for")
    parser.add_argument(
        "--confirm-cap",
        type=float,
        default=4000.0,
        help="the most confirms/s a closed-loop run is given persons for",
    )
    parser.add_argument("--soak-requests", type=int, default=1_000_000)
    parser.add_argument("--soak-chunk", type=float, default=60.0, help="seconds per soak run")
    parser.add_argument(
        "--soak-min-seconds",
        type=float,
        default=720.0,
        help="soak at least this long (the nonce window is 600 s)",
    )
    parser.add_argument("--settlement-lines", type=int, default=1_000_000)
    parser.add_argument("--skip-settlement", action="store_true")
    parser.add_argument("--audit-rows", type=int, default=100_000_000)
    parser.add_argument("--audit-dir", type=Path, default=OUT / "audit")
    parser.add_argument("--audit-regenerate", action="store_true")
    parser.add_argument("--skip-audit", action="store_true")
    parser.add_argument("--skip-bulk", action="store_true", help="no settlement, no audit")
    parser.add_argument("--skip-soak", action="store_true")
    parser.add_argument("--skip-peer", action="store_true", help="no spyne peer (bench/peer)")
    parser.add_argument(
        "--skip-essential", action="store_true",
        help="no essential-work service (bench/essential_app.py)",
    )  # fmt: skip
    parser.add_argument(
        "--all-cores-workers", type=int, help="workers of the all-cores run (default: the CPUs)"
    )
    parser.add_argument(
        "--skip-all-cores", action="store_true", help="no SOAP inquiry on --workers N"
    )
    parser.add_argument("--label", default="", help="a note for RESULTS.md (e.g. before/after)")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    if args.skip_bulk:
        args.skip_settlement = args.skip_audit = True
    args.data_dir = args.data_dir.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(ROOT)
    started = time.monotonic()
    ensure_tools()
    say(f"Lua self-check: {selfcheck()} cases agree with Python")
    bench = Bench(args)
    try:
        bench.prepare()
        bench.settle()
        bench.start()
        bench.http()
        if not args.skip_soak:
            bench.soak()
        bench.figures["rss_end_mb"] = round(bench.sample_rss(), 1)
    finally:
        bench.stop()
    bench.bulk()
    bench.figures["wall_seconds"] = round(time.monotonic() - started, 1)
    (OUT / f"figures-{bench.run_id}.json").write_text(
        json.dumps(bench.figures, indent=2, default=str)
    )
    table = report.table(bench.figures)
    print(table)
    if not args.no_record:
        report.append_results(bench.figures, table)
        say("appended to bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
