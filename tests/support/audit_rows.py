"""An audit row as an inquiry's call leaves it, for the spool's and writer's tests."""

from __future__ import annotations

from datetime import UTC, datetime

from app.audit.chain import AuditRow


def spooled_row(n: int, name: str | None = None) -> AuditRow:
    """Request ``r<n>``'s row; ``name``: the name it returned (also in its detail)."""
    return AuditRow(
        at=datetime(2026, 11, 1, tzinfo=UTC), principal_kind="partner", principal_id=None,
        principal_name="cvs", operator=None, terminal=None, source_ip="203.0.113.7",
        protocol="soap", operation="InquireContribution", national_id="3100600445635",
        name_returned=name, outcome="ok", request_id=f"r{n}",
        detail={"note": name} if name is not None else {},
    )  # fmt: skip
