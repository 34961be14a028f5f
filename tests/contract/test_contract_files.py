"""The hand-written contract: WS-I shaped, complete for the service models, and in step with
what the adapter accepts."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET

import httpx
import pytest
import xmlschema
import zeep

from app.cli.openapi_export import openapi_document
from app.counter import records as models
from app.domain.standing import STATUS_REASONS, SUSPENDED_BY_SSO
from app.soap import deserialise
from app.soap.contract import DEFAULT_CONTRACT_DIR, PLACEHOLDER_ADDRESS
from tests.contract.conftest import LiveServer

WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP11_WSDL = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP12_WSDL = "http://schemas.xmlsoap.org/wsdl/soap12/"
XS = "http://www.w3.org/2001/XMLSchema"
TNS = "urn:sso:contribution:v1"
OPERATIONS = ["InquireContribution", "ConfirmPayment", "CancelPayment", "GetPaymentStatus"]
WSDL_FILE = DEFAULT_CONTRACT_DIR / "contribution.wsdl"


@pytest.fixture(scope="module")
def wsdl() -> ET.Element:
    return ET.parse(WSDL_FILE).getroot()


def test_the_definitions_are_document_literal_wrapped(wsdl: ET.Element) -> None:
    assert wsdl.get("targetNamespace") == TNS
    for operation in OPERATIONS:
        # wrapped: one part named parameters, an element named after the operation
        for message, element in (
            (f"{operation}Request", operation),
            (f"{operation}Response", f"{operation}Response"),
        ):
            parts = wsdl.findall(f"{{{WSDL}}}message[@name='{message}']/{{{WSDL}}}part")
            assert [(p.get("name"), p.get("element")) for p in parts] == [
                ("parameters", f"tns:{element}")
            ]


def test_every_operation_is_documented_and_declares_the_fault(wsdl: ET.Element) -> None:
    port_type = wsdl.find(f"{{{WSDL}}}portType")
    assert port_type is not None
    operations = port_type.findall(f"{{{WSDL}}}operation")
    assert [op.get("name") for op in operations] == OPERATIONS
    for op in operations:
        assert op[0].tag == f"{{{WSDL}}}documentation" and len((op[0].text or "").split()) > 10
        fault = op.find(f"{{{WSDL}}}fault")
        assert fault is not None and fault.get("message") == "tns:GatewayFault"


@pytest.mark.parametrize(
    ("binding", "ns"),
    [("ContributionSoap11Binding", SOAP11_WSDL), ("ContributionSoap12Binding", SOAP12_WSDL)],
)
def test_both_bindings_are_document_literal(wsdl: ET.Element, binding: str, ns: str) -> None:
    element = wsdl.find(f"{{{WSDL}}}binding[@name='{binding}']")
    assert element is not None
    soap_binding = element.find(f"{{{ns}}}binding")
    assert soap_binding is not None and soap_binding.get("style") == "document"
    assert soap_binding.get("transport") == "http://schemas.xmlsoap.org/soap/http"
    for op in element.findall(f"{{{WSDL}}}operation"):
        action = op.find(f"{{{ns}}}operation")
        assert action is not None and action.get("soapAction") == f"{TNS}/{op.get('name')}"
        bodies = op.findall(f"*/{{{ns}}}body") + op.findall(f"*/{{{ns}}}fault")
        assert [b.get("use") for b in bodies] == ["literal"] * 3


def test_one_service_with_a_port_per_soap_version(wsdl: ET.Element) -> None:
    ports = wsdl.findall(f"{{{WSDL}}}service[@name='ContributionService']/{{{WSDL}}}port")
    assert [(p.get("name"), p[0].tag, p[0].get("location")) for p in ports] == [
        ("ContributionSoap11", f"{{{SOAP11_WSDL}}}address", PLACEHOLDER_ADDRESS),
        ("ContributionSoap12", f"{{{SOAP12_WSDL}}}address", PLACEHOLDER_ADDRESS),
    ]


def test_the_repository_files_load_offline_in_zeep() -> None:
    client = zeep.Client(str(WSDL_FILE))
    for port in ("ContributionSoap11", "ContributionSoap12"):
        service = client.bind("ContributionService", port)
        assert {name for name in OPERATIONS if getattr(service, name, None)} == set(OPERATIONS)


def test_the_served_wsdl_is_the_file_with_the_instance_address(live_server: LiveServer) -> None:
    served = httpx.get(live_server.wsdl_url).text
    expected = WSDL_FILE.read_text(encoding="utf-8")
    expected = expected.replace(
        f'location="{PLACEHOLDER_ADDRESS}"', f'location="{live_server.endpoint}"'
    )
    expected = expected.replace(
        'schemaLocation="contribution.xsd"', f'schemaLocation="{live_server.endpoint}?xsd"'
    )
    assert served == expected


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# Service field -> XSD element where the name differs on the wire (money is baht, not satang).
RENAMED = {
    "amount_satang": "amount",
    "savings_satang": "additionalSavings",
    "government_satang": "governmentShare",
    "default_total_satang": "defaultTotal",
    "max_savings_per_month_satang": "maxSavingsPerMonth",
    "last_payment_satang": "lastPaymentAmount",
    "amount_due_satang": "amountDue",
}
MODELS = [
    (models.InquiryRequest, "InquireContribution", {}),
    (models.InquiryResult, "InquiryResult", {"months": "payableMonths"}),
    (models.PayableMonth, "PayableMonth", {}),
    (models.ConfirmRequest, "ConfirmPayment", {"counter": None}),
    (models.CounterInfo, "ConfirmPayment", {}),
    (models.ConfirmResult, "ConfirmResult", {}),
    (models.CancelRequest, "CancelPayment", {}),
    (models.CancelResult, "CancelResult", {}),
    (models.StatusResult, "StatusResult", {}),
]
RESULTS = {
    "InquireContributionResponse": "InquiryResult",
    "ConfirmPaymentResponse": "ConfirmResult",
    "CancelPaymentResponse": "CancelResult",
    "GetPaymentStatusResponse": "StatusResult",
}


@pytest.mark.parametrize(
    ("model", "xsd_name", "renamed"), MODELS, ids=lambda m: getattr(m, "__name__", "")
)
def test_every_field_of_the_service_models_is_in_the_xsd(
    schema: xmlschema.XMLSchema, model: type, xsd_name: str, renamed: dict[str, str | None]
) -> None:
    component = schema.elements.get(xsd_name) or schema.types[xsd_name]
    xsd_type = getattr(component, "type", component)
    elements = [child.local_name for child in xsd_type.content.iter_elements()]
    for field in dataclasses.fields(model):
        wire = renamed.get(field.name, RENAMED.get(field.name, _camel(field.name)))
        if wire is not None:
            assert wire in elements, f"{model.__name__}.{field.name} has no element {wire}"


@pytest.mark.parametrize(("element", "result_type"), RESULTS.items())
def test_each_response_wraps_one_result_of_a_named_type(
    schema: xmlschema.XMLSchema, element: str, result_type: str
) -> None:
    # What wrapper-style toolkits (JAX-WS wsimport with its defaults, .NET) need to make the
    # result the return value: one child, required, not nillable, of a named complex type, so
    # no response field can clash with a request parameter of the same name.
    wrapper = schema.elements[element]
    (child,) = wrapper.type.content.iter_elements()
    assert (child.local_name, child.type.local_name) == ("result", result_type)
    assert (child.min_occurs, child.max_occurs, child.nillable) == (1, 1, False)
    assert not wrapper.nillable and not wrapper.type.attributes


# Unknown figures and each section's own source fields are left out, never zero or empty.
OPTIONAL = {
    "InquiryResult": {
        "effectiveDate", "returnCode", "paymentPeriod", "paymentMethod", "lastPaymentDate",
        "lastPaymentAmount", "amountDue",
        "eligibility", "previousMemberships",  # contract 1.1, appended
    },
    "PreviousMembership": {"endReason", "option"},
    "PayableMonth": {"governmentShare"},
}  # fmt: skip


@pytest.mark.parametrize(("type_name", "names"), OPTIONAL.items())
def test_fields_that_may_be_unknown_are_optional_and_documented(
    schema: xmlschema.XMLSchema, type_name: str, names: set[str]
) -> None:
    elements = {
        child.local_name: child for child in schema.types[type_name].content.iter_elements()
    }
    optional = {name for name, child in elements.items() if child.min_occurs == 0}
    assert optional == names
    for name in names:
        documentation = elements[name].annotation
        assert documentation is not None and len(str(documentation).split()) >= 5, name


def _facets(schema: xmlschema.XMLSchema, type_name: str) -> tuple[int | None, int | None]:
    xsd_type = schema.types[type_name]
    return xsd_type.min_length, xsd_type.max_length


def test_the_adapter_accepts_the_lengths_and_values_the_xsd_allows(
    schema: xmlschema.XMLSchema,
) -> None:
    assert _facets(schema, "PartnerTxnId") == deserialise.PARTNER_TXN_ID_LENGTH
    assert _facets(schema, "CounterCode") == deserialise.COUNTER_CODE_LENGTH
    assert _facets(schema, "CancelReason") == deserialise.CANCEL_REASON_LENGTH
    assert {int(v) for v in schema.types["Section"].enumeration} == deserialise.SECTIONS


@pytest.mark.parametrize(
    ("element", "names"),
    [
        ("InquireContribution", deserialise.INQUIRE_ELEMENTS),
        ("ConfirmPayment", deserialise.CONFIRM_ELEMENTS),
        ("CancelPayment", deserialise.CANCEL_ELEMENTS),
        ("GetPaymentStatus", deserialise.STATUS_ELEMENTS),
    ],
)
def test_the_adapter_reads_exactly_the_elements_of_each_request(
    schema: xmlschema.XMLSchema, element: str, names: tuple[str, ...]
) -> None:
    xsd_names = [
        child.local_name for child in schema.elements[element].type.content.iter_elements()
    ]
    assert tuple(xsd_names) == names


def test_the_schema_is_qualified_and_in_the_contract_namespace() -> None:
    root = ET.parse(DEFAULT_CONTRACT_DIR / "contribution.xsd").getroot()
    assert (root.get("targetNamespace"), root.get("elementFormDefault")) == (TNS, "qualified")
    text = WSDL_FILE.read_text(encoding="utf-8")
    assert re.search(
        r'<xs:import namespace="urn:sso:contribution:v1" schemaLocation="contribution.xsd"/>', text
    )


def _xsd_documentation(name: str) -> str:
    schema = ET.parse(DEFAULT_CONTRACT_DIR / "contribution.xsd").getroot()
    (element,) = [e for e in schema.iter(f"{{{XS}}}element") if e.get("name") == name]
    return " ".join("".join(element.itertext()).split())


def test_both_contracts_name_the_reason_codes_a_partner_may_see() -> None:
    """statusReason and endReason are codes of one vocabulary (never an officer's words): the
    XSD and the OpenAPI document list each code, and no other word in code form."""
    code = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b")
    components = openapi_document()["components"]["schemas"]
    texts = {
        "xsd statusReason": _xsd_documentation("statusReason"),
        "openapi statusReason": components["InquiryOut"]["properties"]["statusReason"][
            "description"
        ],
    }
    for where, text in texts.items():
        assert set(code.findall(text)) == set(STATUS_REASONS), where
    end_reasons = set(STATUS_REASONS) - {SUSPENDED_BY_SSO}  # an ended membership is not suspended
    for text in (
        _xsd_documentation("endReason"),
        components["EndedMembershipOut"]["properties"]["endReason"]["description"],
    ):
        assert set(code.findall(text)) == end_reasons
