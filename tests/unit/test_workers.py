"""What a worker group is made of, without starting one: the CPUs a server may use (affinity
and cgroup quotas, both versions), each worker's share of the settings, the shared port, and
the spools of workers a server no longer runs."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from app.audit.chain import AuditRow
from app.audit.spool.files import AuditSpool, hand_over
from app.settings import Settings
from app.workers.cpus import cgroup_cpu_quota, usable_cpus
from app.workers.listeners import bind_listeners
from app.workers.shares import former_workers, worker_settings

AFFINITY = len(os.sched_getaffinity(0))


def fake_root(tmp_path: Path, cgroup: str, files: dict[str, str]) -> Path:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(cgroup)
    for name, text in files.items():
        path = tmp_path / "sys/fs/cgroup" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("cgroup", "files", "quota"),
    [
        ("0::/\n", {"cpu.max": "max 100000\n"}, None),
        ("0::/\n", {"cpu.max": "150000 100000\n"}, 1.5),
        # A group inside the container's: its parent's quota caps it.
        ("0::/pod/app\n", {"pod/cpu.max": "100000 100000\n", "pod/app/cpu.max": "max 100000"}, 1.0),
        ("4:cpu,cpuacct:/\n",
         {"cpu,cpuacct/cpu.cfs_quota_us": "200000", "cpu,cpuacct/cpu.cfs_period_us": "100000"},
         2.0),
        ("1:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
    ],
)  # fmt: skip
def test_the_cgroup_quota_is_read_from_either_version(
    tmp_path: Path, cgroup: str, files: dict[str, str], quota: float | None
) -> None:
    assert cgroup_cpu_quota(root=fake_root(tmp_path, cgroup, files)) == quota


def test_a_quota_caps_the_cpus_in_whole_cpus_and_leaves_at_least_one(tmp_path: Path) -> None:
    half = fake_root(tmp_path / "a", "0::/\n", {"cpu.max": "50000 100000"})
    assert usable_cpus(root=half) == 1
    ample = fake_root(tmp_path / "b", "0::/\n", {"cpu.max": "6400000 100000"})
    assert usable_cpus(root=ample) == AFFINITY  # never more than it may run on
    assert usable_cpus(root=tmp_path / "nothing") == AFFINITY


def test_each_worker_is_an_instance_of_its_own_with_its_share_of_the_settings() -> None:
    settings = Settings(instance_id="gw", primary_pool_min=2, primary_pool_max=10)
    first, second, third = (worker_settings(settings, index=i, workers=3) for i in range(3))
    assert [s.instance_id for s in (first, second, third)] == ["gw", "gw-w1", "gw-w2"]
    assert 3 * first.primary_pool_max <= settings.primary_pool_max
    assert 3 * first.replica_pool_max <= settings.replica_pool_max
    assert first.primary_pool_min <= first.primary_pool_max
    assert 3 * first.http_max_connections <= settings.http_max_connections
    assert worker_settings(settings, index=0, workers=1) is settings


def test_the_workers_share_one_port_that_no_second_server_can_take() -> None:
    listeners = bind_listeners("127.0.0.1", 0, 2)
    try:
        ports = {sock.getsockname()[1] for sock in listeners}
        assert len(ports) == 1
        with pytest.raises(OSError):
            bind_listeners("127.0.0.1", ports.pop(), 2)
    finally:
        for sock in listeners:
            sock.close()
    assert all(sock.fileno() == -1 for sock in listeners)


def row(n: int) -> AuditRow:
    return AuditRow(
        at=datetime(2026, 11, 1, tzinfo=UTC), principal_kind="partner", principal_id=None,
        principal_name="cvs", operator=None, terminal=None, source_ip="203.0.113.7",
        protocol="soap", operation="InquireContribution", national_id="3100600445635",
        name_returned=None, outcome="ok", request_id=f"r{n}", detail=None,
    )  # fmt: skip


def test_a_former_workers_spool_goes_to_worker_0_unless_it_runs(tmp_path: Path) -> None:
    former = AuditSpool(tmp_path, instance_id="gw-w2")
    former.claim()
    former.append([(uuid4(), row(1)), (uuid4(), row(2))])
    assert list(former_workers(tmp_path, "gw", workers=2)) == ["gw-w2"]
    assert list(former_workers(tmp_path, "gw", workers=3)) == []
    assert hand_over(tmp_path, source="gw-w2", target="gw") == 0, "it runs: its spool is its own"
    former.release()
    assert hand_over(tmp_path, source="gw-w2", target="gw") == 1
    assert not former.pending()
    worker_0 = AuditSpool(tmp_path, instance_id="gw")
    worker_0.claim()
    try:
        assert [r.request_id for _, r in worker_0.take()] == ["r1", "r2"]
    finally:
        worker_0.release()


def test_a_former_workers_spool_that_cannot_be_handed_over_stays_and_the_server_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``ssogw serve`` hands over before it starts a worker. An OSError there (worker 0's
    directory cannot be made: a file in its place, a full disk) ended the server with a
    traceback. The records stay where they are, for the next start; worker 0's own claim then
    says what is wrong with its directory, as it does without former workers."""
    from app.cli.serve import _hand_over_spools

    former = AuditSpool(tmp_path, instance_id="gw-w2")
    former.claim()
    former.append([(uuid4(), row(1))])
    former.release()
    (tmp_path / "gw").write_text("")  # worker 0's directory cannot be made
    settings = Settings(instance_id="gw", audit_spool_dir=tmp_path)
    with caplog.at_level("ERROR", logger="ssogw.workers"):
        _hand_over_spools(settings, workers=1)
    assert former.pending(), "the records stay in the former worker's directory"
    assert [r.getMessage() for r in caplog.records] == [
        f"the audit spool of former worker gw-w2 could not go to gw: {tmp_path / 'gw'}: File "
        "exists; it stays where it is, and is handed over at the next start"
    ]
