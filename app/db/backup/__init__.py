"""Backups of the local pair: base backups and their catalogue, the WAL archive, retention, and
point-in-time restore into a new data directory (`ssogw db backup|backups|prune|restore`).

Layout under the pair's root::

    backups/wal/                 WAL segments the primary archived (``app/db/server_config.py``)
    backups/base/ID/backup.json  one base backup's entry in the catalogue
    backups/base/ID/data/        its files: pg_basebackup's plain format, with backup_manifest
    restores/NAME/               a point-in-time restore, a data directory of its own

In Kubernetes, CloudNativePG does all of this itself (docs/operations.md, "Backups and restore").
"""
