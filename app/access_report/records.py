"""What the access report reads from the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AccessRow:
    """One audit record of the person, with the caller's display name where one is known."""

    seq: int | None  # None: committed, its chain link still to come
    at: datetime
    principal_kind: str
    principal_name: str | None
    partner_display_name: str | None  # the partner, or the partner a refused caller claimed
    operator: str | None
    terminal: str | None
    protocol: str
    operation: str
    outcome: str
    request_id: str
    source_ip: str | None = None  # only for refused calls counted together
    calls: int = 1  # refused calls of callers never admitted, counted per source and minute
    last_at: datetime | None = None  # the last of them
    feed_scope: tuple[str, ...] | None = None  # a feed that included the person: its fields
