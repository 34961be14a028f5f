"""docs/partner-integration.md stays true to the contract: every fault code with its
retryability, and only operations and settings that exist."""

from __future__ import annotations

import re
from pathlib import Path

from app.domain.receipt import validate_receipt_number
from app.error_catalogue import catalogue
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "partner-integration.md").read_text(encoding="utf-8")
WSDL = (ROOT / "wsdl" / "contribution.wsdl").read_text(encoding="utf-8")
_ROW = re.compile(r"^\| `([a-z0-9_.]+)` \| (\d{3}) \| (yes|no) \|", re.MULTILINE)


def test_the_guide_lists_every_fault_code_with_its_status_and_retryability() -> None:
    listed = {code: (int(status), flag == "yes") for code, status, flag in _ROW.findall(GUIDE)}
    published = {e.code: (e.http_status, e.retryable) for e in catalogue()}
    assert listed == published


def test_the_operations_the_guide_names_are_the_wsdls() -> None:
    named = set(re.findall(r"`(InquireContribution|ConfirmPayment|CancelPayment|GetPaymentStatus"
                           r"|[A-Z][A-Za-z]+Payment[A-Za-z]*)`", GUIDE))  # fmt: skip
    operations = set(re.findall(r'<wsdl:operation name="(\w+)"', WSDL))
    assert named and named <= operations, named - operations


def test_the_settings_the_guide_names_exist() -> None:
    for variable in set(re.findall(r"`(SSOGW_[A-Z0-9_]+)`", GUIDE)):
        assert variable.removeprefix("SSOGW_").lower() in Settings.model_fields, variable


def test_every_receipt_number_the_documents_show_is_a_valid_one() -> None:
    texts = [GUIDE, (ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8")]
    shown = {n for text in texts for n in re.findall(r"R\d{6}-\d{8,}-[0-9A-Z]", text)}
    assert shown
    for number in shown:
        validate_receipt_number(number)
