"""The partner feed's records and constants, shared by the use case and its SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class FeedPartner:
    """The partner a feed is for."""

    id: int
    name: str
    display_name: str
    status: str
    data_scope: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FeedQuery:
    """What the store streams: the allowed fields of one section (or both) in one layout."""

    section: int | None
    fields: tuple[str, ...]  # allowed fields, in layout order
    amounts: tuple[int | None, ...]  # satang per month for each of AMOUNT_KEYS (None: no rate)
    fixed: bool  # D records of DETAIL (without line ends), else CSV with a header row


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """The audit record of a finished export, as the store reads it back."""

    at: datetime
    protocol: str
    request_id: str
    exported_by: str | None  # the client's name, or the operator at the command line
    detail: dict[str, Any]


OPERATION: Final = "PartnerFeedExport"


RECORD_LENGTH: Final = 256


STATUS_CODES: Final = {"active": "A", "inactive": "I", "terminated": "T"}


@dataclass(frozen=True, slots=True)
class FeedField:
    """A field of the D record: its data-scope name, first column (from 1) and width."""

    name: str
    start: int
    width: int
    numeric: bool = False  # right-aligned, zero-padded; text is left-aligned, space-padded


DETAIL: Final = (
    FeedField("national_id", 2, 13),
    FeedField("title", 15, 20),
    FeedField("first_name", 35, 50),
    FeedField("last_name", 85, 50),
    FeedField("section", 135, 2, numeric=True),
    FeedField("status", 137, 1),
    FeedField("amount_due", 138, 9, numeric=True),  # satang per month, 7+2 digits
)
