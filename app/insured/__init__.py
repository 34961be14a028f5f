"""Insured persons: administration over REST, the source system's extracts and their bulk import,
demo data.
"""
