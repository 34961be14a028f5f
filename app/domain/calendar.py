"""Business dates and deadlines in Asia/Bangkok, from instants the caller passes in."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.domain.months import Month
from app.errors import CancelNotAllowed

#: Due day of a Section 39 contribution month, in the following month (DOMAIN.md, M).
S39_DUE_DAY: Final = 15

#: Default settlement cut-off of a business day (a setting, see DOMAIN.md).
DEFAULT_CUTOFF: Final = time(23, 0)


def _bangkok() -> tzinfo:
    try:
        return ZoneInfo("Asia/Bangkok")
    except ZoneInfoNotFoundError:
        # No tz database on this machine; Bangkok has kept +07:00 without DST since 1920.
        return timezone(timedelta(hours=7), "Asia/Bangkok")


BANGKOK: Final[tzinfo] = _bangkok()


def business_date(instant: datetime) -> date:
    """The calendar date in Bangkok at an aware instant."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("business_date() needs an aware datetime (with a time zone)")
    return instant.astimezone(BANGKOK).date()


def s39_due_date(month: Month) -> date:
    """The last day to pay a Section 39 month on time: the 15th of the following month."""
    following = month.plus(1)
    return date(following.year, following.month, S39_DUE_DAY)


def settlement_cutoff(business_date: date, cutoff: time = DEFAULT_CUTOFF) -> datetime:
    """The instant a business day's settlement closes: ``cutoff`` on that date in Bangkok."""
    return datetime.combine(business_date, cutoff.replace(tzinfo=None), tzinfo=BANGKOK)


def is_before_cutoff(
    *, business_date: date, instant: datetime, cutoff: time = DEFAULT_CUTOFF
) -> bool:
    """Whether an aware instant falls before the settlement cut-off of ``business_date``."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("is_before_cutoff() needs an aware datetime (with a time zone)")
    return instant < settlement_cutoff(business_date, cutoff)


def ensure_cancellable(
    *, business_date: date, instant: datetime, cutoff: time = DEFAULT_CUTOFF
) -> None:
    """Refuse a counter cancel once the payment's business day has been cut off."""
    if not is_before_cutoff(business_date=business_date, instant=instant, cutoff=cutoff):
        closed_at = settlement_cutoff(business_date, cutoff)
        raise CancelNotAllowed(
            f"Business day {business_date.isoformat()} closed at {closed_at.isoformat()}; "
            "the payment can now only be refunded through SSO.",
            business_date=business_date.isoformat(),
            cutoff_at=closed_at.isoformat(),
        )
