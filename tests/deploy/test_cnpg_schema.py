"""The CloudNativePG objects of deploy/k8s/ against the operator's CRD schemas, as far as a
registry package gives them (tests/deploy/cnpg_schema.py says how far), and the checks by hand
of what that schema cannot say (the plugin's ObjectStore, patterns)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from tests.deploy.cnpg_schema import HERE, cnpg_schema, errors
from tests.deploy.deploy_files import cluster, k8s_obj, k8s_objects

# The type of each CloudNativePG object's spec (ObjectStore: its configuration only).
SPECS = {"Cluster": "ClusterSpec", "ScheduledBackup": "ScheduledBackupSpec"}
BARMAN_CONFIGURATION = "ClusterSpecBackupBarmanObjectStore"


def scheduled_backup() -> dict[str, Any]:
    return k8s_obj("ScheduledBackup", "ssogw-db-daily")


def object_store() -> dict[str, Any]:
    return k8s_obj("ObjectStore", "ssogw-db-backups")


def test_the_schema_package_is_pinned_and_is_cloudnativepgs() -> None:
    wanted = json.loads((HERE / "package.json").read_text())["dependencies"]
    locked = json.loads((HERE / "package-lock.json").read_text())["packages"]
    for name, version in wanted.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is pinned exactly"
        assert locked[f"node_modules/{name}"]["version"] == version
        assert locked[f"node_modules/{name}"]["integrity"].startswith("sha512-")
    defs = cnpg_schema()["$defs"]
    spec = defs["ClusterSpec"]
    assert {"instances", "plugins", "bootstrap", "managed", "storage"} <= set(spec["properties"])
    assert spec["required"] == ["instances"]
    assert "plugin" in defs["ScheduledBackupSpecMethod"]["enum"]
    # Wire names, not the TypeScript ones.
    assert "isWALArchiver" in defs["ClusterSpecPlugins"]["properties"]


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_cloudnativepg_objects_validate_against_the_crd_schema(kind: str) -> None:
    (doc,) = [o for (k, _), o in k8s_objects().items() if k == kind]
    assert doc["apiVersion"] == "postgresql.cnpg.io/v1"
    assert errors(doc["spec"], SPECS[kind]) == []


def test_the_object_stores_configuration_validates_as_barman_cloud_configuration() -> None:
    assert errors(object_store()["spec"]["configuration"], BARMAN_CONFIGURATION) == []


def test_the_object_store_spec_by_hand() -> None:
    # barmancloud.cnpg.io/v1 ObjectStoreSpec (the plugin's API reference): configuration is
    # required; retentionPolicy matches ^[1-9][0-9]*[dwm]$; serverName stays empty.
    spec = object_store()["spec"]
    assert object_store()["apiVersion"] == "barmancloud.cnpg.io/v1"
    assert set(spec) <= {"configuration", "retentionPolicy", "instanceSidecarConfiguration"}
    assert re.fullmatch(r"[1-9][0-9]*[dwm]", spec["retentionPolicy"])
    sidecar = spec["instanceSidecarConfiguration"]
    assert set(sidecar) <= {
        "env", "retentionPolicyIntervalSeconds", "resources", "additionalContainerArgs", "logLevel"
    }  # fmt: skip
    assert set(sidecar["resources"]) <= {"requests", "limits", "claims"}
    assert not spec["configuration"].get("serverName"), "the plugin's own parameter instead"
    assert re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]+/.*", spec["configuration"]["destinationPath"])


def mutated(doc: dict[str, Any], change: Any) -> dict[str, Any]:
    copied = copy.deepcopy(doc)
    change(copied)
    return copied


@pytest.mark.parametrize(
    ("kind", "change", "complaint"),
    [
        ("Cluster", lambda s: s.update(plugin=s.pop("plugins")), "'plugin' was unexpected"),
        ("Cluster", lambda s: s.update(instances="3"), "'3' is not of type 'number'"),
        ("Cluster", lambda s: s.pop("instances"), "'instances' is a required property"),
        (
            "Cluster",
            lambda s: s["plugins"][0].update(isWalArchiver=s["plugins"][0].pop("isWALArchiver")),
            "'isWalArchiver' was unexpected",
        ),
        ("Cluster", lambda s: s["managed"]["roles"][0].update(ensure="yes"), "is not one of"),
        ("ScheduledBackup", lambda s: s.update(method="plugins"), "'plugins' is not one of"),
        ("ScheduledBackup", lambda s: s.pop("cluster"), "'cluster' is a required property"),
        ("ScheduledBackup", lambda s: s.update(immediate="yes"), "is not of type 'boolean'"),
        ("ObjectStore", lambda s: s["wal"].update(compression="zip"), "'zip' is not one of"),
    ],
)
def test_the_schema_refuses_what_the_operator_would(kind: str, change: Any, complaint: str) -> None:
    if kind == "ObjectStore":
        doc, definition = object_store()["spec"]["configuration"], BARMAN_CONFIGURATION
    else:
        doc = cluster()["spec"] if kind == "Cluster" else scheduled_backup()["spec"]
        definition = SPECS[kind]
    found = errors(mutated(doc, change), definition)
    assert any(complaint in error for error in found), found
