"""deploy/k8s/: who reaches the gateway and whom it reaches: the Ingress's TLS and path
allowlist against the routes the app serves, and the NetworkPolicies against the pods, the
database and the ports they name."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from tests.deploy.deploy_files import (
    REPO,
    app_container,
    app_serves,
    cluster,
    env_values,
    k8s_obj,
    migrate_job_pod,
    partitions_job_pod,
    pod_labels,
    selects,
)

# Not through the Ingress: the admin API that issues credentials, and the operations endpoints.
PRIVATE_PREFIXES = ("/api/v1/partners", "/api/v1/clients")
OPERATIONS = ("/metrics", "/livez", "/readyz", "/docs", "/redoc", "/openapi.json")


def ingress() -> dict[str, Any]:
    return k8s_obj("Ingress", "ssogw")


def ingress_paths() -> list[dict[str, Any]]:
    return [path for rule in ingress()["spec"]["rules"] for path in rule["http"]["paths"]]


def _elements(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def public(path: str) -> bool:
    """Whether the Ingress routes ``path`` to a pod (Exact, or Prefix by whole elements)."""
    for rule in ingress_paths():
        if rule["pathType"] == "Exact" and path == rule["path"]:
            return True
        if rule["pathType"] == "Prefix":
            prefix = _elements(rule["path"])
            if _elements(path)[: len(prefix)] == prefix:
                return True
    return False


def served_paths() -> list[str]:
    """A concrete path for every route of the published spec, the SOAP endpoint and the docs."""
    spec = json.loads((REPO / "openapi" / "openapi.json").read_text(encoding="utf-8"))
    paths = [re.sub(r"\{[^}]+\}", "x", path) for path in spec["paths"]]
    return [*paths, "/soap/v1", *OPERATIONS]


def test_only_tls_reaches_the_gateway() -> None:
    spec = ingress()["spec"]
    hosts = {rule["host"] for rule in spec["rules"]}
    assert all(hosts), "every rule names its host (no catch-all)"
    (tls,) = spec["tls"]
    assert set(tls["hosts"]) == hosts and tls["secretName"]
    annotations = ingress()["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert "defaultBackend" not in spec, "nothing outside the allowlist reaches a pod"


def test_every_rule_leads_to_the_gateways_service_port() -> None:
    service = k8s_obj("Service", "ssogw")
    (port,) = service["spec"]["ports"]
    for rule in ingress_paths():
        backend = rule["backend"]["service"]
        assert (backend["name"], backend["port"]["name"]) == ("ssogw", port["name"]), rule["path"]


def test_partners_and_sso_applications_reach_what_they_call() -> None:
    for path in (
        "/soap/v1",  # SOAP 1.1 and 1.2, and GET ?wsdl
        "/api/v1/insured/1234567890123/contributions",  # a counter's inquiry over REST
        "/api/v1/payments",
        "/api/v1/payments/TXN-1",
        "/api/v1/payments/TXN-1/cancel",
        "/api/v1/insured",
        "/api/v1/rates",
        "/api/v1/settlements/7",
        "/api/v1/complaints",
        "/api/v1/stats/payments",
        "/api/v1/audit/lookups",
        "/api/v1/insured/1234567890123/access-report",
    ):
        assert public(path), path
    assert app_serves("/soap/v1", "POST") and app_serves("/soap/v1", "GET")


def test_the_admin_api_metrics_health_and_docs_are_not_public() -> None:
    for path in (*OPERATIONS, "/soap/v1/", "/soap/v1/x", "/api/v1/partnersx"):
        assert not public(path), path
    for path in served_paths():
        if path.startswith(PRIVATE_PREFIXES):
            assert not public(path), f"{path}: the admin API issues credentials"


def test_every_route_is_decided_and_every_rule_serves_something() -> None:
    # A new route is private until someone adds it to the Ingress on purpose.
    expected = {
        path
        for path in served_paths()
        if not path.startswith(PRIVATE_PREFIXES) and path not in OPERATIONS
    }
    assert {path for path in served_paths() if public(path)} == expected
    for rule in ingress_paths():
        assert any(
            _elements(path)[: len(_elements(rule["path"]))] == _elements(rule["path"])
            for path in served_paths()
        ), f"{rule['path']} leads nowhere"


# --- NetworkPolicies -------------------------------------------------------------------------
def policy(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = k8s_obj("NetworkPolicy", name)["spec"]
    return spec


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and In / NotIn / Exists expressions) against labels."""
    if not selects(selector.get("matchLabels", {}), labels):
        return False
    for expression in selector.get("matchExpressions", ()):
        key, operator = expression["key"], expression["operator"]
        value = labels.get(key)
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and key not in labels:
            return False
    return True


def peers(rules: list[dict[str, Any]], direction: str) -> list[tuple[str | None, str, int | str]]:
    """(namespace or None for this one, pod selector as text, port) of every allowed peer."""
    found = []
    for rule in rules:
        assert rule.get(direction), f"a rule without {direction!r} allows every peer"
        assert rule.get("ports"), "a rule without ports allows every port"
        for peer in rule[direction]:
            assert "ipBlock" not in peer, "peers are pods, not address ranges"
            assert "podSelector" in peer, "a whole namespace is too wide"
            namespace = peer.get("namespaceSelector", {}).get("matchLabels", {})
            pods = json.dumps(peer["podSelector"], sort_keys=True)
            for port in rule["ports"]:
                found.append((namespace.get("kubernetes.io/metadata.name"), pods, port["port"]))
    return found


DNS = [
    ("kube-system", '{"matchLabels": {"k8s-app": "kube-dns"}}', 53),
    ("kube-system", '{"matchLabels": {"k8s-app": "kube-dns"}}', 53),
]


def database_peers() -> list[tuple[None, str, int]]:
    port = urlsplit(env_values(app_container())["SSOGW_PRIMARY_DSN"]).port
    assert port is not None
    selector = {"matchLabels": {"cnpg.io/cluster": cluster()["metadata"]["name"]}}
    return [(None, json.dumps(selector, sort_keys=True), port)]


def test_the_gateway_pods_are_reached_only_by_the_ingress_controller_and_prometheus() -> None:
    spec = policy("ssogw-api")
    assert matches(spec["podSelector"], pod_labels())
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    (port,) = app_container()["ports"]
    allowed = peers(spec["ingress"], "from")
    assert {namespace for namespace, _, _ in allowed} == {"ingress-nginx", "monitoring"}
    assert {p for _, _, p in allowed} == {port["name"]}, "the app's port only"
    assert ingress()["spec"]["ingressClassName"] == "nginx", "the controller of ingress-nginx"
    (endpoint,) = k8s_obj("PodMonitor", "ssogw")["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == port["name"], "Prometheus scrapes the port it is let in on"


def test_the_gateway_pods_reach_only_the_database_and_dns() -> None:
    spec = policy("ssogw-api")
    assert sorted(peers(spec["egress"], "to"), key=str) == sorted(
        [*database_peers(), *DNS], key=str
    )
    protocols = {
        port["protocol"] for rule in spec["egress"] for port in rule["ports"] if port["port"] == 53
    }
    assert protocols == {"UDP", "TCP"}, "DNS falls back to TCP for long answers"


def test_the_migration_jobs_reach_only_the_database_and_dns_and_accept_nothing() -> None:
    spec = policy("ssogw-migrate")
    for pod in (
        k8s_obj("Job", "ssogw-migrate")["spec"]["template"],
        k8s_obj("CronJob", "ssogw-partitions")["spec"]["jobTemplate"]["spec"]["template"],
    ):
        assert matches(spec["podSelector"], pod["metadata"]["labels"])
    assert not matches(spec["podSelector"], pod_labels()), "not the gateway's pods"
    assert not matches(policy("ssogw-api")["podSelector"], {"app.kubernetes.io/name": "ssogw"})
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    assert not spec.get("ingress"), "nothing may connect to a migration"
    assert sorted(peers(spec["egress"], "to"), key=str) == sorted(
        [*database_peers(), *DNS], key=str
    )
    for pod in (migrate_job_pod(), partitions_job_pod()):
        (container,) = pod["containers"]
        owner = urlsplit(env_values(container)["SSOGW_OWNER_DSN"])
        assert owner.port == database_peers()[0][2]
