"""The shipped Prometheus configuration and rules: valid, unit-tested, and about real metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.deploy_files import (
    K8S,
    PROMETHEUS,
    REPO,
    RULES_FILE,
    TARGET_LABELS,
    alerts,
    exported_metrics,
    grouping_labels,
    load_yaml,
    metric_names,
    promtool,
    recorded_names,
    rules,
    run,
    selector_labels,
)

CONFIGS = [PROMETHEUS / "prometheus.yml", PROMETHEUS / "local.yml"]
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
SEVERITIES = {"critical", "warning"}


def test_promtool_checks_the_rules() -> None:
    result = run([promtool(), "check", "rules", str(RULES_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_promtool_checks_the_config(config: Path) -> None:
    result = run([promtool(), "check", "config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool rule tests in deploy/prometheus/tests/"
    result = run([promtool(), "test", "rules", *map(str, RULE_TESTS)], cwd=PROMETHEUS / "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for group in load_yaml(path)["tests"]:
            for case in group.get("alert_rule_test", ()):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {alert["alert"] for alert in alerts()}
    assert names - firing == set(), "alerts never seen firing in a promtool test"
    assert names - quiet == set(), "alerts never seen quiet in a promtool test"


def test_both_configs_scrape_the_gateway_and_load_the_rules() -> None:
    for config in CONFIGS:
        document = load_yaml(config)
        (job,) = document["scrape_configs"]
        assert job["job_name"] == "ssogw", config.name
        assert job.get("metrics_path", "/metrics") == "/metrics", config.name
        loaded = {p for pattern in document["rule_files"] for p in config.parent.glob(pattern)}
        assert RULES_FILE in loaded, config.name
    local_targets = load_yaml(PROMETHEUS / "local.yml")["scrape_configs"][0]["static_configs"]
    assert local_targets == [{"targets": ["127.0.0.1:8000"]}], "the target of `make run`"


def test_every_alert_is_documented_and_links_its_runbook() -> None:
    anchors = operating_anchors()
    for alert in alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in SEVERITIES, name
        annotations = alert["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == "README.md", name
        assert anchor == name.lower(), f"{name}: the anchor is the alert's own subsection"
        assert anchor in anchors, f"{name}: README 'Operating' has no heading #{anchor}"


def test_rules_read_only_metrics_and_labels_the_app_exports() -> None:
    exported = exported_metrics()
    recorded = recorded_names()
    all_labels = set().union(*exported.values()) | TARGET_LABELS
    for rule in rules():
        expr = rule["expr"]
        name = rule.get("alert") or rule.get("record")
        for metric in metric_names(expr):
            assert metric in exported or metric in recorded, f"{name}: unknown series {metric}"
        for metric, labels in selector_labels(expr).items():
            if metric in exported:
                known = exported[metric] | TARGET_LABELS
                assert labels <= known, f"{name}: {metric} has no label {labels - known}"
        assert grouping_labels(expr) <= all_labels, f"{name}: groups by an unknown label"


def test_recorded_series_are_read_after_they_are_recorded() -> None:
    seen: set[str] = set()
    for rule in rules():
        for metric in metric_names(rule["expr"]):
            if ":" in metric:
                assert metric in seen, f"{metric} is read before (or without) its record rule"
        if "record" in rule:
            seen.add(rule["record"])


def test_the_kubernetes_prometheus_rule_carries_the_same_groups() -> None:
    rule = load_yaml(K8S / "prometheusrule.yaml")
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == load_yaml(RULES_FILE)["groups"], (
        "deploy/k8s/prometheusrule.yaml drifted from deploy/prometheus/rules/ssogw.rules.yml"
    )


def operating_anchors() -> set[str]:
    """GitHub's anchors of the headings in README's 'Operating' section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Operating\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README has no '## Operating' section"
    headings = re.findall(r"^#{3,6} (.+)$", section.group(1), re.M)
    return {github_anchor(heading) for heading in headings}


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")
