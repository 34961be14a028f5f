"""The persons a settlement shows are recorded under its operations; the access report says
in plain words what each of them showed, rather than printing the operation's code."""

from __future__ import annotations

import pytest

from app.access_report.wording import DISCLOSED, MONTHS_PAID, NATIONAL_ID, OPERATIONS
from app.settlement.service import EXPORTED, IMPORTED, REPORTED


@pytest.mark.parametrize("operation", [IMPORTED, REPORTED, EXPORTED])
def test_each_settlement_operation_has_words_and_says_what_it_showed(operation: str) -> None:
    assert operation in OPERATIONS
    assert {NATIONAL_ID, MONTHS_PAID} <= set(DISCLOSED[operation])
