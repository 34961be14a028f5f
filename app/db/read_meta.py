"""Where a read was served and how fresh it was."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ReadPath(StrEnum):
    """Which store served a read."""

    REPLICA = "replica"
    PRIMARY = "primary"


@dataclass(frozen=True, slots=True)
class ReadMeta:
    path: str  # replica | primary
    as_of: datetime
    rate_digest: str | None = None  # the counter's reads: the store's rate table (lines_digest)
