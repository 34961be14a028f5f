"""Metrics, structured JSON logs, health endpoints, graceful drain, and the connection caps and
read timeouts ``ssogw serve`` runs with."""
