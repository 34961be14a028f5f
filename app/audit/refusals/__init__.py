"""Refusals of callers never admitted, counted per source and window instead of written one by
one (``tally.py``: the sink in front of the audit writer that does it)."""
