"""Bangkok business dates, Section 39 due dates and the settlement cut-off."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfoNotFoundError

import pytest

from app.domain import calendar
from app.domain.calendar import (
    BANGKOK,
    PaidAtWindow,
    bangkok_date,
    ensure_cancellable,
    ensure_same_business_day,
    is_before_cutoff,
    s39_due_date,
    settlement_cutoff,
    settlement_day,
)
from app.domain.months import Month
from app.errors import BusinessDateMismatch, CancelNotAllowed, PaidAtOutOfWindow


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "day"),
    [
        (utc("2024-05-31T17:30:00"), date(2024, 6, 1)),  # already June in Bangkok
        (utc("2024-05-31T16:59:59"), date(2024, 5, 31)),
        (utc("2024-05-31T17:00:00"), date(2024, 6, 1)),  # Bangkok midnight exactly
        (utc("2023-12-31T17:00:00"), date(2024, 1, 1)),  # new year in Bangkok first
        (utc("2024-02-28T17:00:00"), date(2024, 2, 29)),  # leap day
        (utc("2024-02-29T17:00:00"), date(2024, 3, 1)),
        (datetime(2024, 6, 1, 0, 0, tzinfo=BANGKOK), date(2024, 6, 1)),
        (datetime(2024, 6, 1, 9, 0, tzinfo=timezone(timedelta(hours=9))), date(2024, 6, 1)),
        (datetime(2024, 6, 1, 0, 30, tzinfo=timezone(timedelta(hours=9))), date(2024, 5, 31)),
    ],
)
def test_business_date_is_the_date_in_bangkok(instant: datetime, day: date) -> None:
    assert bangkok_date(instant) == day


def test_business_date_refuses_naive_instants() -> None:
    with pytest.raises(ValueError, match="aware"):
        bangkok_date(datetime(2024, 6, 1, 12, 0))


def test_bangkok_is_utc_plus_seven() -> None:
    assert datetime(2024, 6, 1, tzinfo=BANGKOK).utcoffset() == timedelta(hours=7)
    assert datetime(1990, 1, 1, tzinfo=BANGKOK).utcoffset() == timedelta(hours=7)


def test_bangkok_falls_back_to_a_fixed_offset_without_tzdata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_tzdata(key: str) -> object:
        raise ZoneInfoNotFoundError(key)

    monkeypatch.setattr(calendar, "ZoneInfo", no_tzdata)
    zone = calendar._bangkok()
    assert datetime(2024, 6, 1, tzinfo=zone).utcoffset() == timedelta(hours=7)
    assert zone.tzname(None) == "Asia/Bangkok"


@pytest.mark.parametrize(
    ("month", "due"),
    [
        (Month(2024, 5), date(2024, 6, 15)),
        (Month(2024, 12), date(2025, 1, 15)),  # year end
        (Month(2024, 1), date(2024, 2, 15)),
        (Month(2024, 2), date(2024, 3, 15)),
    ],
)
def test_s39_due_date_is_the_15th_of_the_next_month(month: Month, due: date) -> None:
    assert s39_due_date(month) == due


def test_settlement_cutoff_default_is_23_00_bangkok() -> None:
    cut = settlement_cutoff(date(2024, 6, 1))
    assert cut == utc("2024-06-01T16:00:00")
    assert cut.tzinfo is BANGKOK
    assert settlement_cutoff(date(2024, 6, 1), time(22, 30)) == utc("2024-06-01T15:30:00")
    # A cut-off given with a zone is still read as Bangkok wall time.
    assert settlement_cutoff(date(2024, 6, 1), time(23, 0, tzinfo=UTC)) == cut


@pytest.mark.parametrize(
    ("instant", "before"),
    [
        (utc("2024-06-01T15:59:59"), True),  # 22:59:59 Bangkok
        (utc("2024-06-01T16:00:00"), False),  # 23:00 Bangkok: closed
        (utc("2024-06-01T16:30:00"), False),
        (utc("2024-05-31T17:30:00"), True),  # 00:30 Bangkok on the day itself
        (utc("2024-06-01T17:30:00"), False),  # the next day
    ],
)
def test_is_before_cutoff(instant: datetime, before: bool) -> None:
    assert is_before_cutoff(business_date=date(2024, 6, 1), instant=instant) is before


def test_is_before_cutoff_refuses_naive_instants() -> None:
    with pytest.raises(ValueError, match="aware"):
        is_before_cutoff(business_date=date(2024, 6, 1), instant=datetime(2024, 6, 1, 12))


def test_cancel_allowed_before_and_refused_at_the_cutoff() -> None:
    day = date(2024, 6, 1)
    ensure_cancellable(business_date=day, instant=utc("2024-06-01T15:59:59"))
    with pytest.raises(CancelNotAllowed, match="refunded through SSO") as caught:
        ensure_cancellable(business_date=day, instant=utc("2024-06-01T16:00:00"))
    assert caught.value.details == {
        "business_date": "2024-06-01",
        "cutoff_at": "2024-06-01T23:00:00+07:00",
    }
    later = time(23, 30)
    ensure_cancellable(business_date=day, instant=utc("2024-06-01T16:10:00"), cutoff=later)


# --- the business day of a payment --------------------------------------------------------------
@pytest.mark.parametrize(
    ("bangkok", "day"),
    [
        ("2024-06-01T00:00:00", date(2024, 6, 1)),
        ("2024-06-01T22:59:59.999999", date(2024, 6, 1)),
        ("2024-06-01T23:00:00", date(2024, 6, 2)),  # at the cut-off: the next business day
        ("2024-06-01T23:59:59", date(2024, 6, 2)),
        ("2024-12-31T23:30:00", date(2025, 1, 1)),  # across the year
        ("2024-02-29T23:15:00", date(2024, 3, 1)),
    ],
)
def test_settlement_day_moves_to_the_next_day_at_the_cutoff(bangkok: str, day: date) -> None:
    instant = datetime.fromisoformat(bangkok).replace(tzinfo=BANGKOK)
    assert settlement_day(instant) == day
    assert settlement_day(instant.astimezone(UTC)) == day  # the zone it is written in is moot


def test_settlement_day_follows_a_configured_cutoff() -> None:
    at_22_45 = datetime(2024, 6, 1, 22, 45, tzinfo=BANGKOK)
    assert settlement_day(at_22_45, time(22, 30)) == date(2024, 6, 2)
    assert settlement_day(at_22_45, time(23, 0)) == date(2024, 6, 1)


def test_a_payment_after_the_cutoff_can_be_cancelled_until_the_next_days_cutoff() -> None:
    confirmed = datetime(2024, 6, 1, 23, 30, tzinfo=BANGKOK)
    day = settlement_day(confirmed)
    for instant in (confirmed, datetime(2024, 6, 1, 23, 45, tzinfo=BANGKOK),
                    datetime(2024, 6, 2, 22, 59, 59, tzinfo=BANGKOK)):  # fmt: skip
        ensure_cancellable(business_date=day, instant=instant)
    with pytest.raises(CancelNotAllowed):
        ensure_cancellable(business_date=day, instant=datetime(2024, 6, 2, 23, 0, tzinfo=BANGKOK))


def test_a_partners_business_date_must_be_the_gateways() -> None:
    ensure_same_business_day(None, date(2024, 6, 2))  # not sent: the gateway's stands
    ensure_same_business_day(date(2024, 6, 2), date(2024, 6, 2))
    for wrong in (date(2024, 6, 1), date(2024, 6, 3), date(2019, 1, 1)):
        with pytest.raises(BusinessDateMismatch) as caught:
            ensure_same_business_day(wrong, date(2024, 6, 2))
        assert caught.value.code == "client.business_date_mismatch"
        assert caught.value.details == {"field": "businessDate", "business_date": "2024-06-02"}


def test_paid_at_must_lie_within_the_drift_of_the_gateways_clock() -> None:
    window = PaidAtWindow()  # 5 minutes back, 1 minute ahead
    now = datetime(2024, 6, 1, 9, 0, tzinfo=BANGKOK)
    for ok in (now, now - timedelta(minutes=5), now + timedelta(minutes=1)):
        assert window.check(ok, now=now) == ok
    for off in (now - timedelta(minutes=5, seconds=1), now + timedelta(seconds=61),
                now - timedelta(days=7), now + timedelta(days=30)):  # fmt: skip
        with pytest.raises(PaidAtOutOfWindow) as caught:
            window.check(off, now=now)
        assert caught.value.code == "client.paid_at_out_of_window"
        assert caught.value.details["gateway_time"] == "2024-06-01T09:00:00+07:00"
        assert "terminal's clock" in caught.value.message
    narrow = PaidAtWindow(back=timedelta(seconds=30), ahead=timedelta(0))
    with pytest.raises(PaidAtOutOfWindow, match="30 s before or 0 min after"):
        narrow.check(now - timedelta(seconds=31), now=now)
    with pytest.raises(ValueError, match="aware"):
        window.check(datetime(2024, 6, 1, 9, 0), now=now)
