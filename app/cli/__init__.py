"""The ``ssogw`` command, by command group."""
