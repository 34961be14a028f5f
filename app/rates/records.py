"""What the rates capability needs from a store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.domain.rates import Rate


class RateSource(Protocol):
    async def load_rates(self) -> list[Rate]: ...


@dataclass(frozen=True, slots=True)
class RateRecord:
    """One line of the rate table as stored."""

    id: int
    rate: Rate
    note: str | None
    created_at: datetime
