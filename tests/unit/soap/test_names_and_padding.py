"""Names, padding and lengths at their edges: a namespace URI holding "}", white space that is
not XML's around a transaction id, an attribute padded with XML's, a Content-Length of
thousands of digits. Found by a review of the reader's changes (2026-12-06)."""

from __future__ import annotations

import sys

import httpx
import pytest

from app.counter.request_checks import check_txn_id
from app.errors import InvalidInput
from app.soap.namespaces import display_name, split_name
from app.soap.router import _Head
from tests.unit.soap.envelopes import (
    CT11,
    CT12,
    SOAP11,
    SOAP12,
    envelope,
    inquire,
    soap_fault_code,
    text_token,
)

# ---------------------------------------------------------------- (c) names: '}' in a URI


@pytest.mark.parametrize(
    ("uri", "local"), [("urn:a}b", "E"), ("}", "E"), ("{urn}", "E"), ("urn:x}Envelope", "H")]
)
def test_split_name_of_a_uri_with_a_closing_brace(uri: str, local: str) -> None:
    # expat accepts any namespace name; a local name (an NCName) never holds '}'.
    assert split_name(f"{{{uri}}}{local}") == (uri, local)


def test_display_name_of_a_namespace_named_brace_is_not_no_namespace() -> None:
    assert "no namespace" not in display_name("{}}E")


async def test_not_understood_names_the_header_of_a_uri_with_a_brace(
    client: httpx.AsyncClient,
) -> None:
    block = f'<x:H xmlns:x="urn:a}}b" xmlns:e="{SOAP12}" e:mustUnderstand="true"/>'
    response = await client.post(
        "/soap/v1",
        content=envelope(inquire(), version="1.2", header=text_token() + block),
        headers={"content-type": CT12},
    )
    # ElementTree cannot read this answer back: its expat splits names at "}".
    assert b"<env:Value>env:MustUnderstand</env:Value>" in response.content
    assert b'<env:NotUnderstood qname="h0:H" xmlns:h0="urn:a}b"/>' in response.content


# ---------------------------------------------------------------- (b) white space, end to end


@pytest.mark.parametrize("space", ["\u00a0", "\u3000", "\u2003", "\u0085", "\u2028"])
def test_the_service_does_not_take_a_non_xml_space_off_a_transaction_id(space: str) -> None:
    # Left in, and so refused as not printable: never trimmed into another transaction's id.
    with pytest.raises(InvalidInput):
        check_txn_id(f"POS-1{space}")


async def test_mustunderstand_with_xml_white_space_is_still_mandatory(
    client: httpx.AsyncClient,
) -> None:
    # xs:boolean collapses white space: mustUnderstand=" 1 " is true.
    block = f'<x:H xmlns:x="urn:x" xmlns:e="{SOAP11}" e:mustUnderstand=" 1 "/>'
    response = await client.post(
        "/soap/v1",
        content=envelope(inquire(), header=text_token() + block),
        headers={"content-type": CT11},
    )
    assert soap_fault_code(response.content).endswith("MustUnderstand"), response.text


# ---------------------------------------------------------------- (5) Content-Length


def test_a_content_length_of_more_than_4300_digits_is_no_length_or_too_large() -> None:
    assert _Head(content_length="0" * 4300 + "12").declared_length() == 12
    assert _Head(content_length="9" * 4300).declared_length() == sys.maxsize  # over any cap
