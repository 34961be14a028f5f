"""The audit trail: one record per call touching a national ID, group commit onto a hash chain
(or, for a write, committed in the write's own transaction and linked onto the chain after),
the local spool of each instance, lookups, the chain's seals kept outside the database
(``seals/``), verify and export.
"""
