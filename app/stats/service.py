"""Statistics of paid contributions: counts and amounts of confirmed payments, grouped.

Read from the enquiry store (a fresh replica, else the primary), by business date: a payment
counts on the business day it was taken, and only while it stands (cancelled ones do not).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final, Protocol

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.audit.admin_gate import ADMIN_SCOPE, AdminGate
from app.db.read_meta import ReadMeta
from app.errors import InvalidInput
from app.stats.records import PaymentGroup

GROUPINGS: Final = ("day", "section", "partner")
MAX_DAYS: Final = 366


@dataclass(frozen=True, slots=True)
class PaymentStatsReport:
    """Groups in key order and their total over ``[first, last]``."""

    first: date
    last: date
    group_by: str
    groups: list[PaymentGroup]
    count: int
    amount_satang: int
    savings_satang: int
    meta: ReadMeta


class StatsStore(Protocol):
    """Grouped sums of confirmed payments by business date, through the read router."""

    async def payment_groups(
        self, *, first: date, last: date, group_by: str
    ) -> tuple[list[PaymentGroup], ReadMeta]: ...


class PaymentStats:
    """Payment statistics for SSO's internal applications (scope ``admin``)."""

    def __init__(self, *, gate: AdminGate, store: StatsStore) -> None:
        self._gate = gate
        self._store = store

    async def payments(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        first: date,
        last: date,
        group_by: str = "day",
    ) -> PaymentStatsReport:
        """Counts and amounts of confirmed payments with business dates in ``[first, last]``."""
        await self._gate.admit(
            caller=caller, credentials=credentials, operation="PaymentStats", scope=ADMIN_SCOPE
        )
        if group_by not in GROUPINGS:
            raise InvalidInput(f"groupBy must be one of {', '.join(GROUPINGS)}.", field="groupBy")
        if first > last:
            raise InvalidInput("'from' must not be after 'to'.", field="from")
        if (last - first).days >= MAX_DAYS:
            raise InvalidInput(f"A range covers at most {MAX_DAYS} days.", field="to")
        groups, meta = await self._store.payment_groups(first=first, last=last, group_by=group_by)
        return PaymentStatsReport(
            first=first,
            last=last,
            group_by=group_by,
            groups=groups,
            count=sum(g.count for g in groups),
            amount_satang=sum(g.amount_satang for g in groups),
            savings_satang=sum(g.savings_satang for g in groups),
            meta=meta,
        )
