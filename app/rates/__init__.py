"""The effective-dated rate table and its administration (future and retroactive rates)."""
