"""The audit trail: one record per call touching a national ID, group commit onto a hash chain, the
local spool, lookups and verify.
"""
