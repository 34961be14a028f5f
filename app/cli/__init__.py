"""The ``ssogw`` command, one module per command group; the OpenAPI export (``make openapi``)."""
