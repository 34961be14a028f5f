"""deploy/k8s/: valid objects that find each other (labels, ports, paths, services, secrets)."""

from __future__ import annotations

import importlib.util
import shutil
from typing import Any

import pytest
import yaml

from app.settings import Settings
from tests.deploy.deploy_files import (
    K8S,
    K8S_MIGRATE,
    app_container,
    app_serves,
    configmap,
    deployment,
    k8s_obj,
    k8s_objects,
    kustomization,
    load_yaml,
    migrate_job_pod,
    owner_containers,
    partitions_job_pod,
    pod_labels,
    pod_spec,
    run,
    selects,
)

BUILT_IN = {"Namespace", "ConfigMap", "Secret", "Deployment", "Service",
            "HorizontalPodAutoscaler", "PodDisruptionBudget", "CronJob", "Job",
            "PersistentVolumeClaim", "Ingress", "NetworkPolicy"}  # fmt: skip
# The oldest Kubernetes the manifests are meant for, and the newest the validator knows.
K8S_VERSIONS = ("1.28", "latest")
obj = k8s_obj


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
        "Job": ["spec.template.spec.containers", "spec.template.spec.restartPolicy"],
        "Ingress": ["spec.ingressClassName", "spec.tls", "spec.rules"],
        "NetworkPolicy": ["spec.podSelector", "spec.policyTypes"],
        "ObjectStore": ["spec.configuration.destinationPath", "spec.retentionPolicy"],
        "ScheduledBackup": ["spec.cluster.name", "spec.schedule", "spec.method"],
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
        "Job": "batch/v1",
        "PodDisruptionBudget": "policy/v1",
        "Ingress": "networking.k8s.io/v1",
        "NetworkPolicy": "networking.k8s.io/v1",
        "ScheduledBackup": "postgresql.cnpg.io/v1",
        "ObjectStore": "barmancloud.cnpg.io/v1",
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
    for container in [app_container(), *owner_containers()]:
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
    job_pods = [
        obj("CronJob", "ssogw-partitions")["spec"]["jobTemplate"]["spec"]["template"],
        obj("Job", "ssogw-migrate")["spec"]["template"],
    ]
    for owner, selector in selectors.items():
        assert selects(selector, labels), f"{owner} misses the gateway pods"
        assert selector == deployment_selector, f"{owner} selects other pods than the Deployment"
        for job in job_pods:
            assert not selects(selector, job["metadata"]["labels"]), f"{owner} picks job pods"


def test_the_autoscaler_alone_sets_the_number_of_pods() -> None:
    assert "replicas" not in deployment()["spec"], (
        "replicas beside the HPA: every `kubectl apply -k` would cut a scaled-out fleet back"
    )


def test_pods_spread_over_nodes_and_zones_per_rollout() -> None:
    constraints = {c["topologyKey"]: c for c in pod_spec()["topologySpreadConstraints"]}
    assert set(constraints) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    selector = deployment()["spec"]["selector"]["matchLabels"]
    for key, constraint in constraints.items():
        assert constraint["labelSelector"]["matchLabels"] == selector, key
        assert constraint["maxSkew"] == 1, key
        # Counted per ReplicaSet, so the new version's pods spread too during a rollout.
        assert constraint["matchLabelKeys"] == ["pod-template-hash"], key


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


# --- kustomize -------------------------------------------------------------------------------
def test_kustomization_applies_every_manifest_but_the_templates_and_the_migration() -> None:
    files = {path.name for path in K8S.glob("*.yaml")}
    templates = {"kustomization.yaml", "secret.example.yaml"}
    assert set(kustomization()["resources"]) == files - templates
    migrate_files = {path.name for path in K8S_MIGRATE.glob("*.yaml")}
    assert set(kustomization("migrate")["resources"]) == migrate_files - {"kustomization.yaml"}
    assert kustomization("migrate")["namespace"] == kustomization()["namespace"]
    assert kustomization("migrate")["images"] == kustomization()["images"], (
        "the migration Job runs the release's image"
    )
    images = {image["name"] for image in kustomization()["images"]}
    for container in [app_container(), *owner_containers()]:
        assert container["image"].split(":")[0] in images, container["name"]


def test_no_gateway_pod_runs_migrations_or_holds_the_owners_credentials() -> None:
    assert "initContainers" not in pod_spec(), "migrations run in the pre-deploy Job"
    assert [c["args"] for c in migrate_job_pod()["containers"]] == [["migrate"]]
    assert [c["args"] for c in partitions_job_pod()["containers"]] == [["migrate"]]


@pytest.mark.parametrize("directory", ["", "migrate"])
def test_kustomize_builds_the_directory(directory: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: `kubectl kustomize` is not checked")
    result = run([kubectl, "kustomize", str(K8S / directory)], timeout=60)
    assert result.returncode == 0, result.stderr
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    namespace = load_yaml(K8S / "kustomization.yaml")["namespace"]
    for doc in built:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]
    resources = kustomization(directory)["resources"]
    files = {f"{directory}/{name}".lstrip("/") for name in resources}
    listed = {key for key, doc in k8s_objects().items() if doc["__file__"] in files}
    assert {(doc["kind"], doc["metadata"]["name"]) for doc in built} == listed
