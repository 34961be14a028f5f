-- The two database roles of the local pair (docs/operations.md, "Database roles"), run by
-- `ssogw db up` as the superuser on every start, so that it also brings a pair made before
-- the roles existed into line. psql variables: owner, service, database.
--   owner    owns the database, the schema and every object in it; runs `ssogw migrate`
--   service  what the gateway connects as: owns nothing, may do what app/db/grants.py says
-- Loopback trust authentication: neither has a password here.
SELECT format('CREATE ROLE %I', name)
  FROM unnest(ARRAY[:'owner', :'service']) AS name
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name)
\gexec
ALTER ROLE :"owner" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE :"service" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
-- `ssogw db status` as the owner sees the standbys' replication state.
GRANT pg_monitor TO :"owner";
-- The seed's first load may skip per-row foreign-key triggers, and compress the WAL of its
-- index builds with lz4 rather than the server's pglz (PostgreSQL 15 and later).
SELECT format('GRANT SET ON PARAMETER %s TO %I', parameter, :'owner')
  FROM unnest(ARRAY['session_replication_role', 'wal_compression']) AS parameter
 WHERE current_setting('server_version_num')::int >= 150000
\gexec

ALTER DATABASE :"database" OWNER TO :"owner";
ALTER SCHEMA public OWNER TO :"owner";

-- Objects made by the superuser before the roles existed pass to the owner. A table takes its
-- indexes and identity sequences along; a partition is a table of its own.
SELECT format('ALTER TABLE %I.%I OWNER TO %I', n.nspname, c.relname, :'owner')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND c.relowner <> :'owner'::regrole
\gexec
SELECT format('ALTER SEQUENCE %I.%I OWNER TO %I', n.nspname, c.relname, :'owner')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind = 'S' AND c.relowner <> :'owner'::regrole
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype IN ('a', 'i'))
\gexec
SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, :'owner')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND p.proowner <> :'owner'::regrole
\gexec
