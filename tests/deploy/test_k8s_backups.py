"""deploy/k8s/: the database's backups fit together: the Cluster archives WAL through the Barman
Cloud plugin to the ObjectStore, the ScheduledBackup takes daily base backups with the same
plugin, retention and encryption are set, the credentials are a template, and the alerts read
the metrics those pieces export, for this cluster's pods only."""

from __future__ import annotations

import re
from typing import Any

from tests.deploy.deploy_files import (
    RULES_FILE,
    cluster,
    k8s_obj,
    kustomization,
    load_yaml,
)

PLUGIN = "barman-cloud.cloudnative-pg.io"
# The series the backup alerts read, as CloudNativePG documents them: the Barman Cloud plugin's
# (its "Observability" page: they replace cnpg_collector_last_*_backup_timestamp, which stay 0
# with the plugin) and the operator's default monitoring queries.
DOCUMENTED = {
    "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp",
    "barman_cloud_cloudnative_pg_io_last_failed_backup_timestamp",
    "cnpg_pg_stat_archiver_failed_count",
    "cnpg_collector_up",
}


def plugin() -> dict[str, Any]:
    (entry,) = cluster()["spec"]["plugins"]
    assert isinstance(entry, dict)
    return entry


def scheduled() -> dict[str, Any]:
    spec: dict[str, Any] = k8s_obj("ScheduledBackup", "ssogw-db-daily")["spec"]
    return spec


def store() -> dict[str, Any]:
    return k8s_obj("ObjectStore", plugin()["parameters"]["barmanObjectName"])


def test_the_cluster_archives_wal_through_the_plugin_not_the_deprecated_in_tree_store() -> None:
    assert plugin()["name"] == PLUGIN
    assert plugin()["isWALArchiver"] is True
    assert plugin().get("enabled", True) is True
    assert "backup" not in cluster()["spec"], "spec.backup.barmanObjectStore is deprecated"
    assert store()["metadata"]["name"] == plugin()["parameters"]["barmanObjectName"]
    assert cluster()["spec"]["monitoring"]["enablePodMonitor"] is True, "its metrics are scraped"


def test_a_base_backup_every_day_and_one_at_once() -> None:
    spec = scheduled()
    assert spec["cluster"]["name"] == cluster()["metadata"]["name"]
    assert spec["method"] == "plugin"
    assert spec["pluginConfiguration"]["name"] == PLUGIN
    assert spec["immediate"] is True, "a new cluster is restorable from its first hour"
    assert spec["backupOwnerReference"] == "self"
    assert spec.get("suspend", False) is False
    # Six fields, seconds first (Go's cron, not crontab's five): once a day.
    seconds, minutes, hours, *every = spec["schedule"].split()
    assert every == ["*", "*", "*"], spec["schedule"]
    assert seconds.isdigit() and minutes.isdigit() and hours.isdigit(), spec["schedule"]
    # 02:00 in Bangkok (UTC+7), the quiet hours of the counters: the schedule is read in UTC.
    assert (int(hours) + 7) % 24 == 2


def test_retention_and_encryption_of_what_leaves_the_cluster() -> None:
    spec = store()["spec"]
    amount, unit = re.fullmatch(r"(\d+)([dwm])", spec["retentionPolicy"]).groups()  # type: ignore[union-attr]
    days = int(amount) * {"d": 1, "w": 7, "m": 30}[unit]
    assert days >= 7, "at least a week of points to restore to"
    configuration = spec["configuration"]
    for part in ("wal", "data"):
        assert configuration[part]["encryption"] in {"AES256", "aws:kms"}, part
        assert configuration[part]["compression"], part


def test_the_store_credentials_are_a_template_never_applied() -> None:
    credentials = store()["spec"]["configuration"]["s3Credentials"]
    names = {ref["name"] for ref in credentials.values()}
    (name,) = names
    secret = k8s_obj("Secret", name)
    for ref in credentials.values():
        assert "CHANGE-ME" in secret["stringData"][ref["key"]], "a marked placeholder"
    assert secret["__file__"] not in kustomization()["resources"]
    for kind, object_name in (
        ("ObjectStore", store()["metadata"]["name"]),
        ("ScheduledBackup", "ssogw-db-daily"),
    ):
        assert k8s_obj(kind, object_name)["__file__"] in kustomization()["resources"]


def backup_rules() -> list[dict[str, Any]]:
    (group,) = [g for g in load_yaml(RULES_FILE)["groups"] if g["name"].endswith("backups")]
    rules: list[dict[str, Any]] = group["rules"]
    return rules


def test_the_alerts_read_the_documented_series_of_this_clusters_pods() -> None:
    # The plugin's series are named after it: barman-cloud.cloudnative-pg.io -> barman_cloud_...
    prefix = re.sub(r"[.-]", "_", PLUGIN)
    assert {name for name in DOCUMENTED if name.startswith("barman")} == {
        f"{prefix}_last_available_backup_timestamp",
        f"{prefix}_last_failed_backup_timestamp",
    }
    pods = f'pod=~"{cluster()["metadata"]["name"]}-[0-9]+"'
    read: set[str] = set()
    for rule in backup_rules():
        selectors = re.findall(r"\b((?:cnpg|barman)_\w+)\{([^}]*)\}", rule["expr"])
        bare = re.findall(r"\b((?:cnpg|barman)_\w+)\b(?!\{)", rule["expr"])
        assert not bare, f"{rule['alert']}: {bare} not scoped to the cluster's pods"
        for metric, matchers in selectors:
            assert matchers == pods, f"{rule['alert']}: {metric}{{{matchers}}}"
            read.add(metric)
    assert read == DOCUMENTED
    names = {rule["alert"] for rule in backup_rules()}
    assert "SsogwDatabaseBackupTooOld" in names, "the backup-age alert"
