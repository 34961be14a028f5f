"""The local spool an instance commits its audit records to while the primary cannot take them,
and their replay onto the chain once it can.

    files.py    the spool's files: append durably (lines and names on disk), take, set aside
"""
