"""Every error code is published, the same in both contracts: the XSD's ErrorCode enumeration
(with its meaning, whether it is retryable, and its Thai message), the OpenAPI Problem's
``code`` enum, and the vocabulary of ``app/errors/`` are one set. A code added to the
vocabulary fails here until both contracts publish it.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from app.cli.openapi_export import openapi_document
from app.error_catalogue import THAI, CodeEntry, catalogue
from app.errors import ClientError, all_error_classes
from app.soap.contract import DEFAULT_CONTRACT_DIR

XS = "{http://www.w3.org/2001/XMLSchema}"
LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XSD = DEFAULT_CONTRACT_DIR / "contribution.xsd"
OPENAPI = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
THAI_SCRIPT = re.compile(r"[\u0e00-\u0e7f]")


def _xsd_codes() -> dict[str, dict[str | None, str]]:
    """The ErrorCode enumeration: each value and its documentation by language."""
    simple_type = ET.parse(XSD).getroot().find(f"{XS}simpleType[@name='ErrorCode']")
    assert simple_type is not None, "contribution.xsd has no ErrorCode simpleType"
    return {
        enumeration.get("value", ""): {
            doc.get(LANG): " ".join((doc.text or "").split())
            for doc in enumeration.iter(f"{XS}documentation")
        }
        for enumeration in simple_type.iter(f"{XS}enumeration")
    }


def _openapi_codes(document: dict[str, Any]) -> list[str]:
    codes: list[str] = document["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
    return codes


def _xsd_lines(entry: CodeEntry) -> str:
    """How the XSD publishes ``entry`` (shown when it is missing or out of date)."""
    return (
        f'<xs:enumeration value="{entry.code}"><xs:annotation>'
        f'<xs:documentation xml:lang="en">{entry.documentation}</xs:documentation>'
        f'<xs:documentation xml:lang="th">{entry.message_th}</xs:documentation>'
        "</xs:annotation></xs:enumeration>"
    )


def test_the_xsd_publishes_every_code_and_no_other() -> None:
    published, vocabulary = set(_xsd_codes()), {entry.code for entry in catalogue()}
    missing = [_xsd_lines(entry) for entry in catalogue() if entry.code not in published]
    assert not missing, "add to ErrorCode in contribution.xsd:\n" + "\n".join(missing)
    assert published == vocabulary, f"not in app/errors.py: {sorted(published - vocabulary)}"


@pytest.mark.parametrize("entry", catalogue(), ids=lambda entry: entry.code)
def test_the_xsd_documents_each_code_in_english_and_in_thai(entry: CodeEntry) -> None:
    documentation = _xsd_codes().get(entry.code, {})
    assert documentation == {"en": entry.documentation, "th": entry.message_th}, _xsd_lines(entry)


def test_the_openapi_problem_code_lists_the_same_codes() -> None:
    vocabulary = [entry.code for entry in catalogue()]
    assert _openapi_codes(json.loads(OPENAPI.read_text(encoding="utf-8"))) == vocabulary, (
        "run `make openapi` and commit openapi/openapi.json"
    )
    assert _openapi_codes(openapi_document()) == vocabulary


def test_every_code_has_a_thai_message_and_the_catalogue_no_other() -> None:
    vocabulary = {cls.code for cls in all_error_classes()}
    assert set(THAI) == vocabulary
    for code, message in THAI.items():
        assert THAI_SCRIPT.search(message) and message == message.strip(), code


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda cls: f"{cls.__name__}")
def test_a_code_says_whose_fault_it_is(cls: type) -> None:
    side = "client" if issubclass(cls, ClientError) else "server"
    assert re.fullmatch(rf"{side}\.[a-z0-9_]+", cls.code), cls
