"""The audit trail: one record per call touching a national ID, group commit onto a hash chain, the
local spool, lookups, the chain's seals kept outside the database (``seals/``), verify and export.
"""
