"""The local spool an instance commits its audit records to while the primary cannot take them,
and their replay onto the chain once it can.

    files.py    the spool's files: append durably, take for a replay, set aside, hand over
    lock.py     the lock that makes a directory one running process's
    names.py    files and directories named on disk (fsynced into their parents)
    replay.py   the replay onto the chain: in order, each record once, refused ones set aside
"""
