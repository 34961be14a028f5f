"""The process group of ``ssogw serve --workers N``: the CPUs a server may use, the listening
sockets its workers share, the supervisor that starts, restarts and stops them, and the line
each worker keeps to it (readiness, the group's metrics, the supervisor's death)."""
