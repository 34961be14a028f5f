"""deploy/k8s/: the database side: roles, DSNs and their TLS, the migration jobs, secrets."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from asyncpg import connect_utils

from app.db.config import database_config
from app.settings import Settings
from app.workers.shares import worker_settings
from tests.deploy.deploy_files import (
    app_container,
    app_settings_env,
    cluster,
    configmap,
    env_values,
    k8s_obj,
    kustomization,
    migrate_job_pod,
    mounted_volume,
    owner_containers,
    owner_pods,
    pod_spec,
    secret_refs,
)

obj = k8s_obj


def database_containers() -> list[dict[str, Any]]:
    return [app_container(), *owner_containers()]


def database_pods() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod spec, container) of every container that connects to the database."""
    pods = [(pod_spec(), app_container())]
    pods += [(pod, container) for pod in owner_pods() for container in pod["containers"]]
    return pods


def dsns(container: dict[str, Any]) -> list[str]:
    env = env_values(container)
    found = [env[name] for name in ("SSOGW_PRIMARY_DSN", "SSOGW_OWNER_DSN") if name in env]
    found += env.get("SSOGW_REPLICA_DSNS", "").split(",") if "SSOGW_REPLICA_DSNS" in env else []
    return [dsn for dsn in found if dsn]


def service_role() -> dict[str, Any]:
    (role,) = cluster()["spec"]["managed"]["roles"]
    assert isinstance(role, dict)
    return role


def test_the_cloudnativepg_cluster_has_a_primary_and_two_standbys() -> None:
    spec = cluster()["spec"]
    assert spec["instances"] == 3
    # Every standby synchronous, so a payment answered is on every standby pods read from.
    synchronous = spec["postgresql"]["synchronous"]
    assert synchronous["number"] == spec["instances"] - 1
    assert synchronous["method"] == "any" and synchronous["dataDurability"] == "preferred"
    assert "minSyncReplicas" not in spec and "maxSyncReplicas" not in spec


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
    # A worker per CPU of the pod's limit (docs/operations.md, "Workers"), each with its
    # share of the pools and connections of its own.
    limit = str(app_container()["resources"]["limits"]["cpu"])
    cpus = float(limit[:-1]) / 1000 if limit.endswith("m") else float(limit)
    workers = settings.http_workers or max(1, int(cpus))
    listener = 1  # of partner and client changes, a connection of its own
    per_pod = 0
    for index in range(workers):
        config = database_config(worker_settings(settings, index=index, workers=workers))
        per_pod += (
            config.primary_pool.max_size
            + config.audit_pool.max_size
            + config.admission_pool.max_size
            + listener
        )
    max_pods = obj("HorizontalPodAutoscaler", "ssogw")["spec"]["maxReplicas"]
    max_connections = int(cluster()["spec"]["postgresql"]["parameters"]["max_connections"])
    assert max_pods * per_pod < max_connections, "the primary runs out of connections"


def test_the_seal_key_and_the_checkpoints_live_outside_the_image_and_the_database() -> None:
    def volume_of(path: str) -> dict[str, Any]:
        return mounted_volume(pod_spec(), app_container(), path)

    key_file = configmap()["SSOGW_AUDIT_SEAL_KEY_FILE"]
    secret = obj("Secret", volume_of(key_file)["secret"]["secretName"])
    assert "CHANGE-ME" in secret["stringData"][key_file.rsplit("/", 1)[1]], "a marked placeholder"
    resources = obj("Kustomization", "kustomization.yaml")["resources"]
    assert secret["__file__"] not in resources, "applying the directory never installs it"
    seals = volume_of(configmap()["SSOGW_AUDIT_SEAL_DIR"])
    claim = obj("PersistentVolumeClaim", seals["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "the fleet shares one store"


# --- TLS to the database -----------------------------------------------------------------------
def test_every_connection_verifies_the_server_against_the_clusters_own_ca() -> None:
    ca_secret = f"{cluster()['metadata']['name']}-ca"  # made by CloudNativePG
    for pod, container in database_pods():
        found = dsns(container)
        assert found, container["name"]
        for dsn in found:
            query = parse_qs(urlsplit(dsn).query)
            assert query["sslmode"] == ["verify-full"], f"{container['name']}: {dsn}"
            (root,) = query["sslrootcert"]
            volume = mounted_volume(pod, container, root)
            assert volume["secret"]["secretName"] == ca_secret, container["name"]
            # Only the certificate: the secret also holds the CA's private key.
            assert volume["secret"]["items"] == [{"key": "ca.crt", "path": root.rsplit("/", 1)[1]}]
        mounts = [m for m in container["volumeMounts"] if m["mountPath"] == root.rsplit("/", 1)[0]]
        assert [m.get("readOnly") for m in mounts] == [True], container["name"]


def _parsed(dsn: str) -> Any:
    """What asyncpg makes of a DSN (its own parser, as ``connect`` and ``create_pool`` use it)."""
    addresses, params = connect_utils._parse_connect_dsn_and_args(
        dsn=dsn, host=None, port=None, user=None, password=None, passfile=None, database=None,
        ssl=None, service=None, servicefile=None, direct_tls=None, server_settings=None,
        target_session_attrs=None, krbsrvname=None, gsslib=None,
    )  # fmt: skip
    return addresses, params


def test_asyncpg_takes_verify_full_and_the_ca_file_from_the_deployed_dsns(tmp_path: Any) -> None:
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(_self_signed_ca())
    for _, container in database_pods():
        for dsn in dsns(container):
            concrete = dsn.replace("$(", "").replace(")", "")  # user and password stand-ins
            root = parse_qs(urlsplit(dsn).query)["sslrootcert"][0]
            addresses, params = _parsed(concrete.replace(root, str(ca_file)))
            assert addresses[0][0] == urlsplit(dsn).hostname
            context = params.ssl
            assert isinstance(context, ssl.SSLContext), "TLS is required, not preferred"
            assert context.verify_mode is ssl.CERT_REQUIRED
            assert context.check_hostname, "the server's name is checked (verify-full)"
            assert not params.sslmode.name.startswith("prefer")
            assert context.cert_store_stats()["x509_ca"] == 1, "the CA from sslrootcert"
    with pytest.raises((OSError, ValueError)):
        _parsed(f"postgresql://u:p@db:5432/x?sslmode=verify-full&sslrootcert={tmp_path}/none.crt")


def _self_signed_ca() -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ssogw-db")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


# --- the migration jobs ------------------------------------------------------------------------
def owner_settings(container: dict[str, Any]) -> Settings:
    env = env_values(container)
    return Settings.model_validate(
        {
            key.removeprefix("SSOGW_").lower(): value
            for key, value in env.items()
            if key.startswith("SSOGW_") and isinstance(value, str)
        }
    )


def test_migrations_give_up_on_locks_fast_and_statements_before_kubernetes_does() -> None:
    release = k8s_obj("Job", "ssogw-migrate")
    monthly = k8s_obj("CronJob", "ssogw-partitions")["spec"]["jobTemplate"]
    for job in (release, monthly):
        (container,) = job["spec"]["template"]["spec"]["containers"]
        settings = owner_settings(container)
        assert 0 < settings.migrate_lock_timeout_ms <= 10_000, "a waiting ALTER blocks readers"
        assert settings.migrate_statement_timeout_ms > 0
        # PostgreSQL cancels (and rolls back) a long statement before Kubernetes kills the pod.
        deadline_ms = job["spec"]["activeDeadlineSeconds"] * 1000
        assert settings.migrate_statement_timeout_ms < deadline_ms
        assert job["spec"]["backoffLimit"] >= 1, "a lock timeout is tried again"
    assert migrate_job_pod()["restartPolicy"] == "Never", "a failed attempt keeps its log"
    assert release["spec"]["ttlSecondsAfterFinished"] > 0
    assert kustomization("migrate")["resources"] == ["job.yaml"]
