"""Every error of the vocabulary rendered as a SOAP fault in both versions."""

from __future__ import annotations

from datetime import date

import pytest
import xmlschema
from lxml import etree

from app.error_catalogue import THAI
from app.errors import (
    AlreadyPaid,
    ClientError,
    InvalidSoapEnvelope,
    MemberTerminated,
    ServiceError,
    all_error_classes,
)
from app.soap.faults import render_fault, render_refusal
from app.soap.refusals import EnvelopeRefused, FaultKind
from app.soap.versions import SoapVersion
from tests.unit.soap.envelopes import SOAP11, SOAP12, SSO, fault_code, fault_entries

ERRORS = all_error_classes()


def _tree(body: bytes) -> etree._Element:
    return etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))


def _qname(element: etree._Element, value: str) -> tuple[str | None, str]:
    """A QName written in content, resolved against the namespaces in scope there."""
    prefix, _, local = value.rpartition(":")
    return element.nsmap.get(prefix or None), local


@pytest.mark.parametrize("error_class", ERRORS, ids=lambda cls: cls.code)
def test_soap11_fault_of_every_error(
    error_class: type[ServiceError], schema: xmlschema.XMLSchema
) -> None:
    error = error_class(month="2024-05")
    fault = render_fault(error, version=SoapVersion.V11, request_id="req-1")
    assert fault.status_code == 500
    assert fault.content_type == "text/xml; charset=utf-8"
    root = _tree(fault.body)
    faultcode = root.find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault/faultcode")  # unqualified
    assert faultcode is not None and faultcode.text is not None
    side = "Client" if isinstance(error, ClientError) else "Server"
    assert _qname(faultcode, faultcode.text) == (SOAP11, side)
    assert root.findtext(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault/faultstring") == error.message
    detail = root.find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault/detail/{{{SSO}}}GatewayFault")
    assert detail is not None
    schema.validate(detail)
    assert fault_code(fault.body) == error.code
    assert detail.findtext(f"{{{SSO}}}message") == error.message
    assert detail.findtext(f"{{{SSO}}}messageTh") == THAI[error.code]
    assert detail.findtext(f"{{{SSO}}}retryable") == str(error.retryable).lower()
    assert detail.findtext(f"{{{SSO}}}requestId") == "req-1"
    assert fault_entries(fault.body) == {"month": "2024-05"}


@pytest.mark.parametrize("error_class", ERRORS, ids=lambda cls: cls.code)
def test_soap12_fault_of_every_error(
    error_class: type[ServiceError], schema: xmlschema.XMLSchema
) -> None:
    error = error_class()
    fault = render_fault(error, version=SoapVersion.V12, request_id="req-2")
    client = isinstance(error, ClientError)
    assert fault.status_code == (400 if client else 500)
    assert fault.content_type == "application/soap+xml; charset=utf-8"
    f = f"{{{SOAP12}}}Body/{{{SOAP12}}}Fault/{{{SOAP12}}}"
    root = _tree(fault.body)
    value = root.find(f"{f}Code/{{{SOAP12}}}Value")
    assert value is not None and value.text is not None
    assert _qname(value, value.text) == (SOAP12, "Sender" if client else "Receiver")
    subcode = root.find(f"{f}Code/{{{SOAP12}}}Subcode/{{{SOAP12}}}Value")
    assert subcode is not None and subcode.text is not None
    assert _qname(subcode, subcode.text) == (SSO, error.code)
    texts = {
        text.get("{http://www.w3.org/XML/1998/namespace}lang"): text.text
        for text in root.findall(f"{f}Reason/{{{SOAP12}}}Text")
    }
    assert texts == {"en": error.message, "th": THAI[error.code]}
    detail = root.find(f"{f}Detail/{{{SSO}}}GatewayFault")
    assert detail is not None
    schema.validate(detail)
    assert fault_code(fault.body) == error.code
    assert detail.findtext(f"{{{SSO}}}messageTh") == THAI[error.code]


def test_detail_values_are_written_for_people_and_scripts() -> None:
    error = AlreadyPaid(months=["2024-04", "2024-05"], first=True, count=2, on=date(2024, 6, 1))
    fault = render_fault(error, version=SoapVersion.V11, request_id="r")
    assert fault_entries(fault.body) == {
        "months": '["2024-04", "2024-05"]',
        "first": "true",
        "count": "2",
        "on": "2024-06-01",
    }


def test_version_mismatch_in_soap11() -> None:
    refused = EnvelopeRefused(InvalidSoapEnvelope(), kind=FaultKind.VERSION_MISMATCH)
    fault = render_refusal(refused, version=SoapVersion.V11, request_id="r")
    faultcode = _tree(fault.body).find(f".//{{{SOAP11}}}Fault/faultcode")
    assert faultcode is not None and faultcode.text == "soap:VersionMismatch"
    assert fault.status_code == 500


def test_version_mismatch_in_soap12_lists_the_supported_envelopes() -> None:
    refused = EnvelopeRefused(InvalidSoapEnvelope(), kind=FaultKind.VERSION_MISMATCH)
    fault = render_refusal(refused, version=SoapVersion.V12, request_id="r")
    assert fault.status_code == 500
    root = _tree(fault.body)
    supported = root.findall(
        f"{{{SOAP12}}}Header/{{{SOAP12}}}Upgrade/{{{SOAP12}}}SupportedEnvelope"
    )
    assert [_qname(s, s.get("qname", "")) for s in supported] == [
        (SOAP12, "Envelope"),
        (SOAP11, "Envelope"),
    ]
    assert root.find(f".//{{{SOAP12}}}Code/{{{SOAP12}}}Subcode") is None


def test_must_understand_in_soap12_names_the_headers() -> None:
    refused = EnvelopeRefused(
        InvalidSoapEnvelope(),
        kind=FaultKind.MUST_UNDERSTAND,
        not_understood=(("urn:trace", "Trace"), ("urn:other", "Thing")),
    )
    fault = render_refusal(refused, version=SoapVersion.V12, request_id="r")
    root = _tree(fault.body)
    blocks = root.findall(f"{{{SOAP12}}}Header/{{{SOAP12}}}NotUnderstood")
    assert [_qname(b, b.get("qname", "")) for b in blocks] == [
        ("urn:trace", "Trace"),
        ("urn:other", "Thing"),
    ]
    value = root.find(f".//{{{SOAP12}}}Code/{{{SOAP12}}}Value")
    assert value is not None and value.text == "env:MustUnderstand"


def test_a_refusal_may_name_its_own_version_and_http_status() -> None:
    refused = EnvelopeRefused(InvalidSoapEnvelope(), version=SoapVersion.V12, http_status=415)
    fault = render_refusal(refused, version=SoapVersion.V11, request_id="r")
    assert fault.status_code == 415
    assert fault.content_type.startswith("application/soap+xml")


@pytest.mark.parametrize("version", list(SoapVersion))
def test_a_refusal_that_turns_on_a_date_says_so_in_thai_with_buddhist_era_dates(
    version: SoapVersion, schema: xmlschema.XMLSchema
) -> None:
    error = MemberTerminated("The membership ended.", ended_month="2024-05")
    fault = render_fault(error, version=version, request_id="r")
    root = _tree(fault.body)
    (detail,) = root.iter(f"{{{SSO}}}GatewayFault")
    schema.validate(detail)
    assert detail.findtext(f"{{{SSO}}}messageTh") == THAI[error.code]  # the code's, unchanged
    assert detail.findtext(f"{{{SSO}}}detailTh") == "สิ้นสภาพตั้งแต่เดือนพฤษภาคม พ.ศ. 2567"
    assert fault_entries(fault.body) == {"ended_month": "2024-05"}  # ISO for programs
    assert list(detail)[-1].tag == f"{{{SSO}}}detailTh"  # appended last (contract 1.1)
    if version is SoapVersion.V12:
        reason = root.find(
            f"{{{SOAP12}}}Body/{{{SOAP12}}}Fault/{{{SOAP12}}}Reason/{{{SOAP12}}}Text[@"
            "{http://www.w3.org/XML/1998/namespace}lang='th']"
        )
        assert reason is not None
        assert reason.text == f"{THAI[error.code]} (สิ้นสภาพตั้งแต่เดือนพฤษภาคม พ.ศ. 2567)"
