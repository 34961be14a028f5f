#!/usr/bin/env bash
# Entry point of the compose stack's streaming replica: on first start, clone the primary with
# pg_basebackup (-R writes standby.signal and primary_conninfo; -S streams from the slot that
# primary-init.sh created), then run PostgreSQL as a hot standby via the image's own entrypoint.
set -euo pipefail

primary_host="${PRIMARY_HOST:-primary}"

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    for _ in $(seq 120); do
        pg_isready --host="$primary_host" --port=5432 --quiet && break
        sleep 1
    done
    pg_isready --host="$primary_host" --port=5432 || { echo "primary not ready" >&2; exit 1; }
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 0700 "$PGDATA"
    gosu postgres env PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup \
        --host="$primary_host" --username=replicator --pgdata="$PGDATA" \
        --wal-method=stream --write-recovery-conf --slot=replica_1 --checkpoint=fast
fi

exec docker-entrypoint.sh postgres -c hot_standby=on -c hot_standby_feedback=on
