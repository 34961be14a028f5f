"""deploy/k8s/: valid objects that find each other (labels, ports, paths, services, secrets)."""

from __future__ import annotations

import importlib.util
import re
import shutil
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from app.db.config import database_config
from app.settings import Settings
from tests.deploy.deploy_files import (
    K8S,
    app_serves,
    app_settings_env,
    k8s_objects,
    load_yaml,
    run,
)

BUILT_IN = {"Namespace", "ConfigMap", "Secret", "Deployment", "Service",
            "HorizontalPodAutoscaler", "PodDisruptionBudget", "CronJob",
            "PersistentVolumeClaim"}  # fmt: skip
# The oldest Kubernetes the manifests are meant for, and the newest the validator knows.
K8S_VERSIONS = ("1.28", "latest")


def obj(kind: str, name: str) -> dict[str, Any]:
    return k8s_objects()[(kind, name)]


def deployment() -> dict[str, Any]:
    return obj("Deployment", "ssogw")


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = deployment()["spec"]["template"]["spec"]
    return spec


def app_container() -> dict[str, Any]:
    (container,) = pod_spec()["containers"]
    return container


def pod_labels() -> dict[str, str]:
    labels: dict[str, str] = deployment()["spec"]["template"]["metadata"]["labels"]
    return labels


def cluster() -> dict[str, Any]:
    (found,) = [o for (kind, _), o in k8s_objects().items() if kind == "Cluster"]
    return found


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def configmap() -> dict[str, str]:
    (source,) = app_container()["envFrom"]
    data: dict[str, str] = obj("ConfigMap", source["configMapRef"]["name"])["data"]
    return data


# --- schemas ---------------------------------------------------------------------------------
def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if key != "__file__"}


@pytest.mark.skipif(
    importlib.util.find_spec("kubernetes_validate") is None,
    reason="kubernetes-validate is not installed; the hand checks below still run",
)
def test_built_in_objects_validate_against_the_kubernetes_schemas() -> None:
    import kubernetes_validate

    for version in K8S_VERSIONS:
        wanted = kubernetes_validate.latest_version() if version == "latest" else version
        for (kind, name), doc in k8s_objects().items():
            if kind in BUILT_IN:
                try:
                    kubernetes_validate.validate(_clean(doc), wanted, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    path = ".".join(map(str, exc.path))
                    pytest.fail(f"{doc['__file__']} {kind}/{name} on {wanted}: {path}: {exc}")


def test_objects_have_the_fields_their_kind_requires() -> None:
    required = {
        "Deployment": ["spec.selector.matchLabels", "spec.template.spec.containers"],
        "Service": ["spec.selector", "spec.ports"],
        "HorizontalPodAutoscaler": ["spec.scaleTargetRef", "spec.maxReplicas", "spec.metrics"],
        "PodDisruptionBudget": ["spec.selector.matchLabels"],
        "CronJob": ["spec.schedule", "spec.jobTemplate.spec.template.spec.containers"],
        "ConfigMap": ["data"],
        "Secret": ["stringData"],
        "Cluster": ["spec.instances", "spec.storage.size", "spec.bootstrap.initdb.database"],
        "PodMonitor": ["spec.selector.matchLabels", "spec.podMetricsEndpoints"],
        "PrometheusRule": ["spec.groups"],
        "Kustomization": ["resources"],
    }
    api_versions = {
        "Cluster": "postgresql.cnpg.io/v1",
        "PodMonitor": "monitoring.coreos.com/v1",
        "PrometheusRule": "monitoring.coreos.com/v1",
        "HorizontalPodAutoscaler": "autoscaling/v2",
        "Deployment": "apps/v1",
        "CronJob": "batch/v1",
        "PodDisruptionBudget": "policy/v1",
    }
    for (kind, name), doc in k8s_objects().items():
        assert doc.get("apiVersion") and doc.get("kind"), name
        if kind != "Kustomization":
            assert doc["metadata"]["name"], doc["__file__"]
        if kind in api_versions:
            assert doc["apiVersion"] == api_versions[kind], f"{kind}/{name}"
        for path in required.get(kind, ()):
            node: Any = doc
            for part in path.split("."):
                assert isinstance(node, dict) and part in node, f"{kind}/{name}: {path}"
                node = node[part]
            assert node not in (None, [], {}), f"{kind}/{name}: {path} is empty"
    for container in [*pod_spec()["containers"], *pod_spec()["initContainers"]]:
        assert container["name"] and container["image"]
        assert container["resources"]["requests"] and container["resources"]["limits"]


# --- labels and selectors --------------------------------------------------------------------
def test_every_selector_picks_the_gateway_pods_and_only_them() -> None:
    labels = pod_labels()
    deployment_selector = deployment()["spec"]["selector"]["matchLabels"]
    assert selects(deployment_selector, labels)
    selectors = {
        "Service": obj("Service", "ssogw")["spec"]["selector"],
        "PodMonitor": obj("PodMonitor", "ssogw")["spec"]["selector"]["matchLabels"],
        "PodDisruptionBudget": obj("PodDisruptionBudget", "ssogw")["spec"]["selector"][
            "matchLabels"
        ],
        "topologySpread": pod_spec()["topologySpreadConstraints"][0]["labelSelector"][
            "matchLabels"
        ],
    }
    job_pods = obj("CronJob", "ssogw-partitions")["spec"]["jobTemplate"]["spec"]["template"]
    for owner, selector in selectors.items():
        assert selects(selector, labels), f"{owner} misses the gateway pods"
        assert selector == deployment_selector, f"{owner} selects other pods than the Deployment"
        assert not selects(selector, job_pods["metadata"]["labels"]), f"{owner} picks job pods"


def test_the_autoscaler_scales_the_deployment_on_cpu() -> None:
    hpa = obj("HorizontalPodAutoscaler", "ssogw")["spec"]
    target = hpa["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment()["apiVersion"],
        "Deployment",
        deployment()["metadata"]["name"],
    )
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert "cpu" in app_container()["resources"]["requests"], "utilization needs a CPU request"


# --- ports and paths -------------------------------------------------------------------------
def test_one_named_port_from_the_container_to_the_service_and_the_monitor() -> None:
    (port,) = app_container()["ports"]
    assert str(port["containerPort"]) == configmap()["SSOGW_HTTP_PORT"]
    (service_port,) = obj("Service", "ssogw")["spec"]["ports"]
    assert service_port["targetPort"] in (port["name"], port["containerPort"])
    (endpoint,) = obj("PodMonitor", "ssogw")["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == port["name"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert app_container()[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])


def test_probes_and_scrapes_ask_paths_the_app_serves() -> None:
    container = app_container()
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (endpoint,) = obj("PodMonitor", "ssogw")["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    for path in ("/livez", "/readyz", "/metrics"):
        assert app_serves(path), f"the app does not serve GET {path}"


def test_the_monitor_names_the_job_the_rules_expect() -> None:
    monitor = obj("PodMonitor", "ssogw")["spec"]
    assert pod_labels()[monitor["jobLabel"]] == "ssogw", 'rules say up{job="ssogw"}'


# --- shutdown --------------------------------------------------------------------------------
def test_kubernetes_waits_longer_than_the_drain_and_the_grace() -> None:
    settings = Settings.model_validate(
        {key.removeprefix("SSOGW_").lower(): value for key, value in configmap().items()}
    )
    assert settings.shutdown_drain_s >= 5, "long enough for endpoints to drop the pod"
    waited = pod_spec()["terminationGracePeriodSeconds"]
    assert waited > settings.shutdown_drain_s + settings.shutdown_grace_s
    readiness = app_container()["readinessProbe"]
    noticed = readiness["periodSeconds"] * readiness["failureThreshold"]
    assert noticed < settings.shutdown_drain_s, "/readyz 503 is seen before the drain ends"


# --- database and secrets --------------------------------------------------------------------
def env_values(container: dict[str, Any]) -> dict[str, Any]:
    """A container's env by name; each $(VAR) it uses is defined before it."""
    defined: dict[str, Any] = {}
    for entry in container["env"]:
        for used in re.findall(r"\$\((\w+)\)", str(entry.get("value", ""))):
            assert used in defined, f"{entry['name']} uses $({used}) before it is defined"
        defined[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return defined


def owner_containers() -> list[dict[str, Any]]:
    """The containers that run `ssogw migrate`: the init container and the monthly job."""
    job = obj("CronJob", "ssogw-partitions")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return [*pod_spec()["initContainers"], *job["containers"]]


def database_containers() -> list[dict[str, Any]]:
    return [app_container(), *owner_containers()]


def secret_refs(env: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each variable filled from a secret -> (secret, key)."""
    return {
        name: (value["secretKeyRef"]["name"], value["secretKeyRef"]["key"])
        for name, value in env.items()
        if isinstance(value, dict) and "secretKeyRef" in value
    }


def service_role() -> dict[str, Any]:
    (role,) = cluster()["spec"]["managed"]["roles"]
    assert isinstance(role, dict)
    return role


def test_the_cloudnativepg_cluster_has_a_primary_and_two_standbys() -> None:
    spec = cluster()["spec"]
    assert spec["instances"] == 3
    assert spec["minSyncReplicas"] <= spec["maxSyncReplicas"] < spec["instances"]


def test_the_cluster_manages_an_unprivileged_service_role_apart_from_the_owner() -> None:
    role = service_role()
    assert role["ensure"] == "present" and role["login"] is True
    for power in ("superuser", "createdb", "createrole", "replication", "bypassrls"):
        assert role[power] is False, power
    assert role["name"] != cluster()["spec"]["bootstrap"]["initdb"]["owner"]
    # Its password comes from a secret template that names it and is never applied by itself.
    secret = obj("Secret", role["passwordSecret"]["name"])
    assert secret["type"] == "kubernetes.io/basic-auth"
    assert secret["stringData"]["username"] == role["name"]
    assert "CHANGE-ME" in secret["stringData"]["password"], "a marked placeholder"
    assert secret["metadata"]["labels"]["cnpg.io/reload"] == "true", "rotation reaches the role"
    resources = obj("Kustomization", "kustomization.yaml")["resources"]
    assert secret["__file__"] not in resources


def test_the_gateway_connects_to_the_rw_and_ro_services_as_the_service_role() -> None:
    name = cluster()["metadata"]["name"]
    database = cluster()["spec"]["bootstrap"]["initdb"]["database"]
    env = env_values(app_container())
    primary = urlsplit(env["SSOGW_PRIMARY_DSN"])
    assert (primary.hostname, primary.port, primary.path) == (f"{name}-rw", 5432, f"/{database}")
    replicas = [urlsplit(dsn) for dsn in env["SSOGW_REPLICA_DSNS"].split(",")]
    assert [(r.hostname, r.path) for r in replicas] == [(f"{name}-ro", f"/{database}")]
    refs = secret_refs(env)
    service_secret = service_role()["passwordSecret"]["name"]
    by_key = {key: var for var, (secret, key) in refs.items() if secret == service_secret}
    assert set(by_key) == {"username", "password"}
    for dsn in (primary, *replicas):
        assert dsn.username == f"$({by_key['username']})"
        assert dsn.password == f"$({by_key['password']})"
    assert f"{name}-app" not in {secret for secret, _ in refs.values()}, "no owner credentials"
    assert "SSOGW_OWNER_DSN" not in env


def test_migrations_run_as_the_owner_and_grant_to_the_service_role() -> None:
    name = cluster()["metadata"]["name"]
    database = cluster()["spec"]["bootstrap"]["initdb"]["database"]
    service_secret = service_role()["passwordSecret"]["name"]
    for container in owner_containers():
        assert container["args"] == ["migrate"], container["name"]
        env = env_values(container)
        assert {var for var in env if var.startswith("SSOGW_")} <= app_settings_env()
        owner = urlsplit(env["SSOGW_OWNER_DSN"])
        assert (owner.hostname, owner.port, owner.path) == (f"{name}-rw", 5432, f"/{database}")
        refs = secret_refs(env)
        by_key = {key: var for var, (secret, key) in refs.items() if secret == f"{name}-app"}
        assert set(by_key) == {"username", "password"}, "the owner's secret by CNPG"
        assert owner.username == f"$({by_key['username']})"
        assert owner.password == f"$({by_key['password']})"
        assert refs["SSOGW_SERVICE_ROLE"] == (service_secret, "username")
        assert (service_secret, "password") not in refs.values(), "no service password"
        assert "SSOGW_PRIMARY_DSN" not in env


def test_the_secret_key_comes_from_the_secret_template() -> None:
    ref = env_values(app_container())["SSOGW_SECRET_KEY"]["secretKeyRef"]
    secret = obj("Secret", ref["name"])
    assert "CHANGE-ME" in secret["stringData"][ref["key"]], "a marked placeholder"
    resources = obj("Kustomization", "kustomization.yaml")["resources"]
    assert secret["__file__"] not in resources, "applying the directory never installs it"


def test_settings_are_real_and_connections_fit_the_database() -> None:
    assert set(configmap()) <= app_settings_env(), "every key is an SSOGW_* setting"
    named = {e["name"] for e in app_container()["env"] if e["name"].startswith("SSOGW_")}
    assert named <= app_settings_env()
    settings = Settings.model_validate(
        {
            "primary_dsn": "postgresql://x@127.0.0.1:1/x",
            **{key.removeprefix("SSOGW_").lower(): v for key, v in configmap().items()},
        }
    )
    config = database_config(settings)
    listener = 1  # of partner and client changes, a connection of its own
    per_pod = (
        config.primary_pool.max_size
        + config.audit_pool.max_size
        + config.admission_pool.max_size
        + listener
    )
    max_pods = obj("HorizontalPodAutoscaler", "ssogw")["spec"]["maxReplicas"]
    max_connections = int(cluster()["spec"]["postgresql"]["parameters"]["max_connections"])
    assert max_pods * per_pod < max_connections, "the primary runs out of connections"


def test_the_seal_key_and_the_checkpoints_live_outside_the_image_and_the_database() -> None:
    mounts = app_container()["volumeMounts"]
    volumes = {volume["name"]: volume for volume in pod_spec()["volumes"]}

    def volume_of(path: str) -> dict[str, Any]:
        (name,) = [m["name"] for m in mounts if path.startswith(m["mountPath"].rstrip("/") + "/")
                   or path == m["mountPath"]]  # fmt: skip
        return volumes[name]

    key_file = configmap()["SSOGW_AUDIT_SEAL_KEY_FILE"]
    secret = obj("Secret", volume_of(key_file)["secret"]["secretName"])
    assert "CHANGE-ME" in secret["stringData"][key_file.rsplit("/", 1)[1]], "a marked placeholder"
    resources = obj("Kustomization", "kustomization.yaml")["resources"]
    assert secret["__file__"] not in resources, "applying the directory never installs it"
    seals = volume_of(configmap()["SSOGW_AUDIT_SEAL_DIR"])
    claim = obj("PersistentVolumeClaim", seals["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "the fleet shares one store"


# --- kustomize -------------------------------------------------------------------------------
def test_kustomization_applies_every_manifest_but_the_secret_template() -> None:
    kustomization = obj("Kustomization", "kustomization.yaml")
    files = {path.name for path in K8S.glob("*.yaml")}
    assert set(kustomization["resources"]) == files - {"kustomization.yaml", "secret.example.yaml"}
    images = {image["name"] for image in kustomization["images"]}
    for container in database_containers():
        assert container["image"].split(":")[0] in images, container["name"]


def test_kustomize_builds_the_directory() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: `kubectl kustomize` is not checked")
    result = run([kubectl, "kustomize", str(K8S)], timeout=60)
    assert result.returncode == 0, result.stderr
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    namespace = load_yaml(K8S / "kustomization.yaml")["namespace"]
    for doc in built:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]
    assert len(built) == sum(
        1 for (kind, _) in k8s_objects() if kind not in {"Kustomization", "Secret"}
    )
