"""deploy/compose.yaml: the pieces find each other (hosts, ports, files, settings)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from app.settings import Settings
from tests.deploy.deploy_files import (
    COMPOSE_FILE,
    DEPLOY,
    PROMETHEUS,
    app_serves,
    app_settings_env,
    load_yaml,
    volume_mounts,
)


def services() -> dict[str, Any]:
    result: dict[str, Any] = load_yaml(COMPOSE_FILE)["services"]
    return result


def test_the_stack_has_every_piece() -> None:
    assert {"primary", "replica", "migrate", "app", "prometheus", "grafana"} <= set(services())


def test_the_app_reads_the_primary_and_the_replica_of_the_stack_as_the_service_role() -> None:
    env = services()["app"]["environment"]
    assert set(env) <= app_settings_env(), "every variable is a real setting"
    primary = urlsplit(env["SSOGW_PRIMARY_DSN"])
    replicas = [urlsplit(dsn) for dsn in env["SSOGW_REPLICA_DSNS"].split(",")]
    assert (primary.hostname, primary.port) == ("primary", 5432)
    assert [(r.hostname, r.port) for r in replicas] == [("replica", 5432)]
    db = services()["primary"]["environment"]
    for dsn in (primary, *replicas):
        assert dsn.username == db["SERVICE_ROLE"] and dsn.password == db["SERVICE_PASSWORD"]
        assert dsn.path == "/" + db["POSTGRES_DB"]
    assert "SSOGW_OWNER_DSN" not in env, "the app holds no owner credentials"
    assert "CHANGE-ME" in env["SSOGW_SECRET_KEY"], "the key is a marked placeholder"


def test_migrations_run_as_the_owner_and_grant_to_the_apps_role() -> None:
    migrate = services()["migrate"]
    assert migrate["command"] == ["migrate"]
    env = migrate["environment"]
    assert set(env) <= app_settings_env(), "every variable is a real setting"
    db = services()["primary"]["environment"]
    owner = urlsplit(env["SSOGW_OWNER_DSN"])
    assert (owner.hostname, owner.port, owner.path) == ("primary", 5432, "/" + db["POSTGRES_DB"])
    assert (owner.username, owner.password) == (db["OWNER_ROLE"], db["OWNER_PASSWORD"])
    assert env["SSOGW_SERVICE_ROLE"] == db["SERVICE_ROLE"] != db["OWNER_ROLE"]
    assert db["POSTGRES_USER"] not in (db["OWNER_ROLE"], db["SERVICE_ROLE"]), "no superuser"
    assert not {"SSOGW_PRIMARY_DSN", "SSOGW_SECRET_KEY"} & set(env), "no service credentials"
    # The init script makes both roles from that environment, neither privileged, and gives
    # the owner the database and its schema.
    init = (DEPLOY / "postgres" / "primary-init.sh").read_text()
    for role in ("owner", "service"):
        assert f'--set={role}="${role.upper()}_ROLE"' in init
        created = re.search(rf'CREATE ROLE :"{role}" WITH ([^;]*);', init)
        assert created, f"the {role} role is created"
        assert {"LOGIN", "NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE"} <= set(created[1].split())
    assert 'ALTER DATABASE :"database" OWNER TO :"owner";' in init
    assert 'ALTER SCHEMA public OWNER TO :"owner";' in init


def test_the_app_keeps_its_own_files_on_a_volume() -> None:
    data_dir = services()["app"]["environment"]["SSOGW_DATA_DIR"]
    assert data_dir in volume_mounts(services()["app"]).values(), "seals and spool outlive it"


def test_the_primary_streams_to_the_replica() -> None:
    command = " ".join(services()["primary"]["command"])
    assert "wal_level=replica" in command and "max_wal_senders=" in command
    init = next(
        DEPLOY / source
        for source, target in volume_mounts(services()["primary"]).items()
        if target.startswith("/docker-entrypoint-initdb.d/")
    )
    entry = DEPLOY / next(
        source
        for source, target in volume_mounts(services()["replica"]).items()
        if [target] == services()["replica"]["entrypoint"]
    )
    slot = re.search(r"pg_create_physical_replication_slot\('(\w+)'\)", init.read_text())
    assert slot, "the primary creates a slot for the standby"
    replica_script = entry.read_text()
    assert "pg_basebackup" in replica_script and "--write-recovery-conf" in replica_script
    assert f"--slot={slot.group(1)}" in replica_script
    assert services()["replica"]["environment"]["PRIMARY_HOST"] == "primary"
    for script in (init, entry):
        assert script.stat().st_mode & 0o111, f"{script.name} is executable"


def test_published_ports_stay_on_loopback_and_off_a_system_prometheus() -> None:
    published = {
        name: [str(port) for port in service.get("ports", ())]
        for name, service in services().items()
    }
    for name, ports in published.items():
        for port in ports:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert not any(p.split(":")[1] == "9090" for ports in published.values() for p in ports)


def test_prometheus_scrapes_the_app_service_with_the_shipped_rules() -> None:
    prometheus = services()["prometheus"]
    mounts = volume_mounts(prometheus)
    assert (DEPLOY / next(s for s, t in mounts.items() if t == "/etc/prometheus")).resolve() == (
        PROMETHEUS
    )
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    (job,) = load_yaml(PROMETHEUS / "prometheus.yml")["scrape_configs"]
    (target,) = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in services()
    app_port = int(services()["app"]["ports"][0].rsplit(":", 1)[1])
    assert int(port) == app_port


def test_the_app_health_check_asks_readyz_on_the_app_port() -> None:
    test = services()["app"]["healthcheck"]["test"]
    (url,) = re.findall(r"http://127\.0\.0\.1:(\d+)(/\w+)", " ".join(test))
    port = int(services()["app"]["ports"][0].rsplit(":", 1)[1])
    assert url == (str(port), "/readyz")
    assert app_serves("/readyz")


def test_every_mounted_file_exists() -> None:
    for name, service in services().items():
        for source in volume_mounts(service):
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"


def test_the_app_is_built_from_the_repository_dockerfile() -> None:
    for name in ("app", "migrate"):
        build = services()[name]["build"]
        context = (COMPOSE_FILE.parent / build["context"]).resolve()
        assert (context / build["dockerfile"]).is_file(), name
    fields = Settings.model_fields
    drain_and_grace = fields["shutdown_drain_s"].default + fields["shutdown_grace_s"].default
    grace = services()["app"]["stop_grace_period"]
    assert int(grace.rstrip("s")) > drain_and_grace, "docker stop never cuts the drain short"
