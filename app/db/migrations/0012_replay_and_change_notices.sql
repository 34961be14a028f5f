-- 0012: admission for a fleet of instances: WS-Security nonces remembered by the database, and
-- changes of partners and clients announced to every instance.
--
-- 1. wsse_nonces: every nonce of an admitted PasswordDigest, by partner, for the whole window a
--    token carrying it could be accepted in (2 x SSOGW_WSSE_WINDOW_S from its first use), so a
--    replay is refused by any instance, before or after a restart. The key is the first 16
--    bytes of SHA-256 of the DECODED nonce (never its Base64 text, which may be re-encoded with
--    other padding bits): fixed width, so no nonce a client makes up can fail a batch.
--    Claimed in batches (INSERT ... SELECT FROM unnest ... ON CONFLICT DO NOTHING RETURNING,
--    app/principals/nonce_ledger.py); rows past expires_at are deleted by the instances in
--    small batches (hence DELETE in app/db/grants.py, and the index on expires_at).
-- 2. A row trigger on partners and api_clients sends pg_notify('ssogw_principals',
--    '<partner|client>:<id>') with every insert, update and delete: delivered at commit to
--    every instance's listener (app/principals/change_feed.py), which drops what it remembers
--    of that principal.

CREATE TABLE wsse_nonces (
    partner_id  integer     NOT NULL,    -- partners.id (no foreign key: no lock on partners)
    nonce_key   bytea       NOT NULL CHECK (length(nonce_key) = 16),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (partner_id, nonce_key)
) WITH (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05);

CREATE INDEX wsse_nonces_expiry ON wsse_nonces (expires_at);

CREATE FUNCTION ssogw_principal_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_notify(
        'ssogw_principals',
        TG_ARGV[0] || ':' || CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
    RETURN NULL;
END $$;

CREATE TRIGGER partners_changed AFTER INSERT OR UPDATE OR DELETE ON partners
    FOR EACH ROW EXECUTE FUNCTION ssogw_principal_changed('partner');
CREATE TRIGGER api_clients_changed AFTER INSERT OR UPDATE OR DELETE ON api_clients
    FOR EACH ROW EXECUTE FUNCTION ssogw_principal_changed('client');
