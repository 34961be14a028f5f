"""Metrics, structured JSON logs, health endpoints, graceful drain."""
