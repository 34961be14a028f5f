"""The counter transaction — inquiry, confirm, cancel, status — with the payments ledger and its
REST routes.
"""
