#!/usr/bin/env bash
# Runs once, when the primary's data directory is first created (docker-entrypoint-initdb.d),
# as the superuser: a replication role and a physical slot for the standby, the pg_hba line that
# lets the standby stream, and the gateway's two roles (docs/operations.md, "Database roles"):
# the owner of the database and its schema, which runs `ssogw migrate`, and the service role
# the app connects as, which owns nothing and gets its privileges from the migrator. The names
# and passwords come from the compose file's (demo) environment.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=repl_password="$REPLICATION_PASSWORD" \
    --set=owner="$OWNER_ROLE" --set=owner_password="$OWNER_PASSWORD" \
    --set=service="$SERVICE_ROLE" --set=service_password="$SERVICE_PASSWORD" \
    --set=database="$POSTGRES_DB" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'repl_password';
SELECT pg_create_physical_replication_slot('replica_1');
CREATE ROLE :"owner" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    PASSWORD :'owner_password';
CREATE ROLE :"service" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    PASSWORD :'service_password';
ALTER DATABASE :"database" OWNER TO :"owner";
ALTER SCHEMA public OWNER TO :"owner";
SQL

echo "host replication replicator all scram-sha-256" >>"$PGDATA/pg_hba.conf"
