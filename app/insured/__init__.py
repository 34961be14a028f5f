"""Insured persons: administration over REST, their life cycle across sections (Section 39
eligibility, moves between sections, officers' status events), the printable membership
statement, the source system's extracts and their bulk import, demo data.
"""
