"""Partners' daily settlement files (bank fixed-width and CSV): import, match against the ledger,
report, export.
"""
