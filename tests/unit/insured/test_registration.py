"""A Section 39 registration's application date: never in the future, and set back from the
day of the registration only as far as the setting allows, unless an officer overrides."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from app.domain.section39 import S39Policy, Section33History
from app.errors import ApplicationBackdated, InvalidInput
from app.insured.registration import Registration, checked_registration

TODAY = date(2024, 7, 10)
NID = "3100600445635"
REG = Registration(
    national_id=NID, title="นาย", first_name="สมชาย", last_name="รักงาน", section=39,
    section33=Section33History(24, date(2024, 6, 28)),
)  # fmt: skip


def applied(days_back: int, *, days: int = 0, override: str | None = None) -> date | None:
    reg = replace(REG, applied_on=TODAY - timedelta(days=days_back), override_reason=override)
    policy = S39Policy(application_backdate_days=days)
    return checked_registration(reg, national_id=NID, today=TODAY, s39=policy).s39_applied_on


def test_by_default_the_application_is_dated_the_day_of_the_registration() -> None:
    assert applied(0) == TODAY
    assert (
        checked_registration(REG, national_id=NID, today=TODAY, s39=S39Policy()).s39_applied_on
        == TODAY
    )
    with pytest.raises(ApplicationBackdated) as caught:
        applied(1)
    assert caught.value.code == "client.application_backdated" and caught.value.http_status == 422
    assert caught.value.details == {
        "field": "appliedOn",
        "applied_on": "2024-07-09",
        "registered_on": "2024-07-10",
        "earliest_applied_on": "2024-07-10",
        "backdate_days": 0,
    }
    with pytest.raises(InvalidInput, match="future"):
        applied(-1)


@pytest.mark.parametrize(("days_back", "allowed"), [(0, True), (7, True), (8, False), (90, False)])
def test_the_setting_allows_so_many_days_back(days_back: int, allowed: bool) -> None:
    if allowed:
        assert applied(days_back, days=7) == TODAY - timedelta(days=days_back)
    else:
        with pytest.raises(ApplicationBackdated):
            applied(days_back, days=7)


def test_an_officers_override_admits_an_earlier_date() -> None:
    assert applied(90, override="form stamped by the branch") == TODAY - timedelta(days=90)
    with pytest.raises(ApplicationBackdated):
        applied(90, override="   ")  # a blank reason is no reason
