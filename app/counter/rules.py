"""The settings the counter's use cases apply: section policies, ceiling, cut-off, paid-at
window, ID prefixes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from app.domain.calendar import PaidAtWindow
from app.domain.section39 import S39Policy
from app.domain.section40 import S40Policy


@dataclass(frozen=True, slots=True)
class CounterRules:
    """The settings the counter use cases apply."""

    s39: S39Policy
    s40: S40Policy
    ceiling_satang: int
    cutoff: time  # a business day closes at this time (Asia/Bangkok); later cash is the next's
    paid_at_window: PaidAtWindow  # how far a counter's paidAt may lie from the gateway's clock
    prefixes: dict[int, frozenset[str]]
