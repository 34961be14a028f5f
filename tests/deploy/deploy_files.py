"""The shipped deployment files, loaded once, and what the app says they may refer to.

The app side is the source of truth: metric and label names come from a real ``Metrics``
registry, settings from ``Settings``, routes from ``create_app``.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from starlette.routing import Match

from app.main import create_app
from app.observability.metrics import Metrics
from app.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULES_FILE = PROMETHEUS / "rules" / "ssogw.rules.yml"
DASHBOARD_FILE = DEPLOY / "grafana" / "dashboards" / "ssogw.json"
K8S = DEPLOY / "k8s"
# Applied on its own before each release (the pre-deploy migration Job).
K8S_MIGRATE = K8S / "migrate"
COMPOSE_FILE = DEPLOY / "compose.yaml"

# Labels Prometheus adds to every scraped series, and the bucket bound of histograms.
TARGET_LABELS = frozenset({"job", "instance"})


def load_yaml(path: Path) -> Any:
    """The one YAML document in ``path``."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_docs(path: Path) -> list[Any]:
    """Every non-empty YAML document in ``path``."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's short-syntax volumes: source (path or volume name) -> target."""
    mounts = {}
    for volume in service.get("volumes", ()):
        source, target, *_mode = volume.split(":")
        mounts[source] = target
    return mounts


def load_dashboard() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return result


@functools.cache
def k8s_objects() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object in deploy/k8s/*.yaml and deploy/k8s/migrate/*.yaml by (kind, name); a
    kustomization is named by its path under deploy/k8s. ``__file__`` is that path too."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted([*K8S.glob("*.yaml"), *K8S_MIGRATE.glob("*.yaml")]):
        relative = str(path.relative_to(K8S))
        for doc in load_yaml_docs(path):
            name = doc.get("metadata", {}).get("name", relative)
            key = (doc["kind"], name)
            assert key not in found, f"{key} defined twice"
            found[key] = {**doc, "__file__": relative}
    return found


def k8s_obj(kind: str, name: str) -> dict[str, Any]:
    return k8s_objects()[(kind, name)]


def kustomization(directory: str = "") -> dict[str, Any]:
    """deploy/k8s's kustomization, or that of a directory under it (``migrate``)."""
    return k8s_obj("Kustomization", f"{directory}/kustomization.yaml".lstrip("/"))


def deployment() -> dict[str, Any]:
    return k8s_obj("Deployment", "ssogw")


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = deployment()["spec"]["template"]["spec"]
    return spec


def app_container() -> dict[str, Any]:
    (container,) = pod_spec()["containers"]
    assert isinstance(container, dict)
    return container


def pod_labels() -> dict[str, str]:
    labels: dict[str, str] = deployment()["spec"]["template"]["metadata"]["labels"]
    return labels


def cluster() -> dict[str, Any]:
    (found,) = [o for (kind, _), o in k8s_objects().items() if kind == "Cluster"]
    return found


def configmap() -> dict[str, str]:
    (source,) = app_container()["envFrom"]
    data: dict[str, str] = k8s_obj("ConfigMap", source["configMapRef"]["name"])["data"]
    return data


def migrate_job_pod() -> dict[str, Any]:
    spec: dict[str, Any] = k8s_obj("Job", "ssogw-migrate")["spec"]["template"]["spec"]
    return spec


def partitions_job_pod() -> dict[str, Any]:
    cron = k8s_obj("CronJob", "ssogw-partitions")
    spec: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def owner_pods() -> list[dict[str, Any]]:
    """The pod specs that run `ssogw migrate` as the owner: the release's Job, the monthly one."""
    return [migrate_job_pod(), partitions_job_pod()]


def owner_containers() -> list[dict[str, Any]]:
    return [container for pod in owner_pods() for container in pod["containers"]]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def env_values(container: dict[str, Any]) -> dict[str, Any]:
    """A container's env by name; each $(VAR) it uses is defined before it."""
    defined: dict[str, Any] = {}
    for entry in container["env"]:
        for used in re.findall(r"\$\((\w+)\)", str(entry.get("value", ""))):
            assert used in defined, f"{entry['name']} uses $({used}) before it is defined"
        defined[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return defined


def secret_refs(env: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each variable filled from a secret -> (secret, key)."""
    return {
        name: (value["secretKeyRef"]["name"], value["secretKeyRef"]["key"])
        for name, value in env.items()
        if isinstance(value, dict) and "secretKeyRef" in value
    }


def mounted_volume(pod: dict[str, Any], container: dict[str, Any], path: str) -> dict[str, Any]:
    """The volume of ``pod`` that holds ``path`` in ``container``."""
    (name,) = [
        mount["name"]
        for mount in container.get("volumeMounts", ())
        if path == mount["mountPath"] or path.startswith(mount["mountPath"].rstrip("/") + "/")
    ]
    (volume,) = [volume for volume in pod["volumes"] if volume["name"] == name]
    assert isinstance(volume, dict)
    return volume


@functools.cache
def exported_metrics() -> dict[str, frozenset[str]]:
    """Every series name the app exports (with _total, _bucket, ... suffixes) -> its labels."""
    metrics = Metrics(CollectorRegistry())
    names: dict[str, frozenset[str]] = {}
    for collector in vars(metrics).values():
        describe = getattr(collector, "describe", None)
        if describe is None:
            continue
        labels = frozenset(getattr(collector, "_labelnames", ()))
        for family in describe():
            suffixes = {
                "counter": ("_total", "_created"),
                "histogram": ("_bucket", "_count", "_sum", "_created"),
                "summary": ("", "_count", "_sum", "_created"),
                "gauge": ("",),
            }[family.type]
            for suffix in suffixes:
                extra = {"le"} if suffix == "_bucket" else set()
                names[family.name + suffix] = labels | extra
    # The process, platform and GC collectors on the same registry: every sample they give.
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name not in names:
                names[sample.name] = frozenset(sample.labels)
    return names


def rules() -> list[dict[str, Any]]:
    """Every recording and alerting rule of the shipped rules file."""
    return [rule for group in load_yaml(RULES_FILE)["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"\b([a-zA-Z_][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def metric_names(expr: str) -> set[str]:
    """The gateway's series (ssogw_*, and the process_*/python_* its registry exports) and
    recorded series (ssogw:*) an expression reads."""
    bare = _STRING.sub('""', expr)
    return set(re.findall(r"\b(?:ssogw[_:]|process_|python_)[a-zA-Z0-9_:]+", bare))


def selector_labels(expr: str) -> dict[str, set[str]]:
    """Label names used in each ``metric{...}`` selector of an expression."""
    found: dict[str, set[str]] = {}
    for metric, body in _SELECTOR.findall(expr):
        found.setdefault(metric, set()).update(_MATCHER.findall(_STRING.sub('""', body)))
    return found


def grouping_labels(expr: str) -> set[str]:
    """Label names in by/without/on/ignoring clauses."""
    bare = _STRING.sub('""', expr)
    return {
        label.strip() for group in _GROUPING.findall(bare) for label in group.split(",") if label
    }


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of the dashboard, template variables included."""
    dashboard = load_dashboard()
    found = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", ())
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            inner = re.fullmatch(r"label_values\((.*),\s*([a-zA-Z_]\w*)\)", query)
            assert inner, f"variable {variable['name']}: {query}"
            found.append((f"${variable['name']}", inner.group(1)))
    return found


def grafana_to_promql(expr: str) -> str:
    """A dashboard query with Grafana's variables replaced, so Prometheus can parse it."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
    return re.sub(r"\$\{?[a-zA-Z_]\w*\}?", ".*", expr)


@functools.cache
def app_settings_env() -> frozenset[str]:
    """Every environment variable ``Settings`` reads (SSOGW_ + field name)."""
    return frozenset(f"SSOGW_{name.upper()}" for name in Settings.model_fields)


@functools.cache
def _app_router() -> Any:
    return create_app(Settings(primary_dsn="postgresql://x@127.0.0.1:1/x")).router


def app_serves(path: str, method: str = "GET") -> bool:
    """Whether the app has a route for ``method path`` (no server, no database needed)."""
    scope = {
        "type": "http",
        "path": path,
        "method": method,
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    return any(route.matches(scope)[0] is Match.FULL for route in _app_router().routes)


def promtool() -> str:
    """The promtool binary, or skip the test saying how to get it."""
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "promtool not installed: run scripts/ensure-os-tools (Debian package prometheus)"
        )
    return found


def run(
    argv: list[str], *, cwd: Path = REPO, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a tool; its output is kept for the assertion message."""
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
