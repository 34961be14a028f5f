"""Business dates and deadlines in Asia/Bangkok, from instants the caller passes in.

Two notions of a day, kept apart on purpose:

- the **calendar date** in Bangkok (``business_date``): what a contribution month, a due date
  and "today" for payable months are judged by;
- the **business day** of a payment (``settlement_day``): the day it settles in and may be
  cancelled on. Cash taken at or after the cut-off (23:00 by default) belongs to the next
  business day, which closes at its own cut-off. The gateway decides it from its own clock.

And how people in Thailand read a date: in the Buddhist Era (พ.ศ., the Common Era year + 543),
with Thai month names. Machine fields keep ISO dates; every surface people read (printable
documents, officers' CSV, Thai fault texts) writes the date with these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.domain.months import Month
from app.errors import BusinessDateMismatch, CancelNotAllowed, InvalidInput, PaidAtOutOfWindow

#: Due day of a Section 39 contribution month, in the following month (DOMAIN.md, M).
S39_DUE_DAY: Final = 15

#: Default settlement cut-off of a business day (a setting, see DOMAIN.md).
DEFAULT_CUTOFF: Final = time(23, 0)

#: The Buddhist Era (พ.ศ.) runs 543 years ahead of the Common Era: 2024 CE is B.E. 2567.
BUDDHIST_ERA_OFFSET: Final = 543
THAI_MONTHS: Final = ("มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน",
                      "กรกฎาคม", "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม")  # fmt: skip
THAI_MONTHS_SHORT: Final = ("ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.",
                            "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.")  # fmt: skip


def _bangkok() -> tzinfo:
    try:
        return ZoneInfo("Asia/Bangkok")
    except ZoneInfoNotFoundError:
        # No tz database on this machine; Bangkok has kept +07:00 without DST since 1920.
        return timezone(timedelta(hours=7), "Asia/Bangkok")


BANGKOK: Final[tzinfo] = _bangkok()


def bangkok_date(instant: datetime) -> date:
    """The calendar date in Bangkok at an aware instant."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("bangkok_date() needs an aware datetime (with a time zone)")
    return instant.astimezone(BANGKOK).date()


def settlement_day(instant: datetime, cutoff: time = DEFAULT_CUTOFF) -> date:
    """The business day a payment made at ``instant`` settles in: after the cut-off, the next."""
    day = bangkok_date(instant)
    local = instant.astimezone(BANGKOK).time().replace(tzinfo=None)
    return day + timedelta(days=1) if local >= cutoff.replace(tzinfo=None) else day


def ensure_same_business_day(claimed: date | None, decided: date) -> None:
    """Refuse a partner's ``businessDate`` that is not the business day the gateway decided."""
    if claimed is not None and claimed != decided:
        raise BusinessDateMismatch(
            f"businessDate {claimed.isoformat()} is not the business day of this payment, "
            f"{decided.isoformat()} (the gateway decides it: after the cut-off, the next day).",
            field="businessDate",
            business_date=decided.isoformat(),
        )


@dataclass(frozen=True, slots=True)
class PaidAtWindow:
    """How far a counter's ``paidAt`` may lie from the gateway's clock: ``back`` before, ``ahead``
    after. Within it, a payment is judged at ``paidAt``; outside it, it is refused."""

    back: timedelta = timedelta(minutes=5)
    ahead: timedelta = timedelta(minutes=1)

    def check(self, paid_at: datetime, *, now: datetime) -> datetime:
        """``paid_at`` if it lies within the window around ``now``; else PaidAtOutOfWindow."""
        if paid_at.tzinfo is None or paid_at.utcoffset() is None:
            raise ValueError("PaidAtWindow.check() needs an aware paid_at")
        if not now - self.back <= paid_at <= now + self.ahead:
            gateway_time = now.astimezone(BANGKOK).isoformat(timespec="seconds")
            raise PaidAtOutOfWindow(
                f"paidAt {paid_at.isoformat()} is more than {_span(self.back)} before or "
                f"{_span(self.ahead)} after the gateway's time {gateway_time}: check the "
                "terminal's clock; cash taken longer ago is confirmed with paidAt now.",
                field="paidAt",
                gateway_time=gateway_time,
                max_behind_s=int(self.back.total_seconds()),
                max_ahead_s=int(self.ahead.total_seconds()),
            )
        return paid_at


def has_utc_instant(moment: datetime) -> bool:
    """Whether aware ``moment`` is an instant of the years 1 to 9999 in UTC: what Python holds,
    and so what a timestamptz column can be given (the driver sends every one in UTC).
    0001-01-01T00:00:00+01:00 and 9999-12-31T23:59:59-01:00 are valid ISO texts that are not."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True


def ensure_representable(paid_at: datetime) -> datetime:
    """``paid_at`` if it has a UTC instant (an xs:dateTime such as 9999-12-31T23:59:59-14:00
    has none in Python); else PaidAtOutOfWindow, as any instant that far from now is."""
    if not has_utc_instant(paid_at):
        raise PaidAtOutOfWindow(
            f"paidAt {paid_at.isoformat()} is not a time a payment can have been taken.",
            field="paidAt",
        )
    return paid_at


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


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


def ensure_day_closed(
    business_date: date, *, instant: datetime, cutoff: time = DEFAULT_CUTOFF, grace_s: float = 0
) -> None:
    """Refuse to settle a business day before its cut-off and ``grace_s`` after it: until then
    a payment of the day may still be committing, and a settlement taken before would miss it."""
    try:
        opens = settlement_cutoff(business_date, cutoff) + timedelta(seconds=grace_s)
    except OverflowError:  # 9999-12-31 with a late cut-off or a long grace: never closes
        opens = datetime.max.replace(tzinfo=UTC)
    if instant < opens:
        raise InvalidInput(
            f"Business day {business_date.isoformat()} is not closed yet: its settlement may be"
            f" taken from {opens.isoformat()} (the cut-off, and {grace_s:g} s for payments"
            " still committing).",
            field="businessDate",
            reason="day_not_closed",
            settles_from=opens.isoformat(),
        )


# --- the Buddhist Era, as people read dates ------------------------------------------------------
def buddhist_year(year: int) -> int:
    """The Buddhist Era year (พ.ศ.) of a Common Era year: 2024 -> 2567."""
    return year + BUDDHIST_ERA_OFFSET


def thai_date(day: date) -> str:
    """``12 มิ.ย. 2567``: short, for tables and CSV (the year is the Buddhist Era's)."""
    return f"{day.day} {THAI_MONTHS_SHORT[day.month - 1]} {buddhist_year(day.year)}"


def thai_date_long(day: date) -> str:
    """``12 มิถุนายน พ.ศ. 2567``: in full, for documents and sentences."""
    return f"{day.day} {THAI_MONTHS[day.month - 1]} พ.ศ. {buddhist_year(day.year)}"


def thai_month(month: Month) -> str:
    """``มิถุนายน พ.ศ. 2567``: a contribution month in full."""
    return f"{THAI_MONTHS[month.month - 1]} พ.ศ. {buddhist_year(month.year)}"


def thai_month_short(month: Month) -> str:
    """``มิ.ย. 2567``: a contribution month, short, for tables and CSV."""
    return f"{THAI_MONTHS_SHORT[month.month - 1]} {buddhist_year(month.year)}"


def thai_datetime(instant: datetime) -> str:
    """``12 มิ.ย. 2567 09:31:05 น.``: an aware instant in Bangkok time, Buddhist Era."""
    local = instant.astimezone(BANGKOK)
    return f"{thai_date(local.date())} {local:%H:%M:%S} น."
