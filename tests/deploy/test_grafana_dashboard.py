"""The Grafana dashboard: parseable queries over real metrics, and provisioning that finds it."""

from __future__ import annotations

from pathlib import Path

from tests.deploy.deploy_files import (
    COMPOSE_FILE,
    DASHBOARD_FILE,
    DEPLOY,
    TARGET_LABELS,
    dashboard_queries,
    exported_metrics,
    grafana_to_promql,
    grouping_labels,
    load_dashboard,
    load_yaml,
    metric_names,
    promtool,
    recorded_names,
    run,
    selector_labels,
    volume_mounts,
)

PROVISIONING = DEPLOY / "grafana" / "provisioning"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def test_queries_read_only_metrics_and_labels_the_app_exports() -> None:
    exported = exported_metrics()
    all_labels = set().union(*exported.values()) | TARGET_LABELS
    recorded = recorded_names()
    for title, expr in dashboard_queries():
        for metric in metric_names(expr):
            assert metric in exported or metric in recorded, f"{title}: unknown series {metric}"
        for metric, labels in selector_labels(expr).items():
            if metric in exported:
                known = exported[metric] | TARGET_LABELS
                assert labels <= known, f"{title}: {metric} has no label {labels - known}"
        assert grouping_labels(expr) <= all_labels, f"{title}: groups by an unknown label"


def test_queries_parse_as_promql(tmp_path: Path) -> None:
    # promtool parses every query as the expression of a recording rule.
    rules = "groups:\n  - name: dashboard\n    rules:\n" + "".join(
        f"      - record: dashboard_query_{i}\n        expr: '{grafana_to_promql(expr)}'\n"
        for i, (_, expr) in enumerate(dashboard_queries())
    )
    assert "'" not in "".join(expr for _, expr in dashboard_queries())
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(rules, encoding="utf-8")
    result = run([promtool(), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_covers_capacity() -> None:
    queried = set().union(*(metric_names(expr) for _, expr in dashboard_queries()))
    needed = {
        "ssogw_requests_total",  # requests per second, errors per operation and partner
        "ssogw_request_duration_seconds_bucket",  # p50/p99 latency
        "ssogw_replica_lag_seconds",
        "ssogw_replica_lag_bytes",
        "ssogw_reads_total",
        "ssogw_pool_connections",
        "ssogw_pool_connections_in_use",
        "ssogw_audit_batch_size_bucket",
        "ssogw_audit_commit_seconds_bucket",
        "ssogw_payments_total",
        "ssogw_payment_amount_satang_total",
        "ssogw_event_loop_lag_seconds_bucket",
        "ssogw_pool_acquire_seconds_bucket",
        "ssogw_pool_connections_max",
        "ssogw_db_errors_total",
        "ssogw_audit_queued_records",
        "ssogw_audit_spool_bytes",
        "ssogw_primary_up",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "ssogw_build_info",
    }
    assert needed - queried == set()
    baht = [expr for _, expr in dashboard_queries() if "ssogw_payment_amount_satang" in expr]
    assert baht and all(expr.rstrip().endswith("/ 100") for expr in baht), "satang -> baht"


def test_panels_are_laid_out_and_use_the_chosen_datasource() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    occupied: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel.get("description"), f"{panel['title']}: say how to read it"
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_provisioning_finds_the_dashboard_and_prometheus_in_compose() -> None:
    compose = load_yaml(COMPOSE_FILE)["services"]
    grafana_mounts = volume_mounts(compose["grafana"])
    (provider,) = load_yaml(PROVISIONING / "dashboards" / "ssogw.yml")["providers"]
    inside = provider["options"]["path"]
    host = next(h for h, c in grafana_mounts.items() if c == inside)
    assert (COMPOSE_FILE.parent / host).resolve() == DASHBOARD_FILE.parent
    assert grafana_mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    (source,) = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090", "the compose service, on its own port"
    assert "prometheus" in compose
