"""Database plumbing: pools, the replica router and read-your-writes, migrations
(``app/db/migrations/``), the local PostgreSQL pair.
"""
