"""The inquiry answer, written straight from the result, reads back as the result said."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from app.counter.records import EndedMembership, InquiryResult, PayableMonth
from app.db.read_meta import ReadPath
from app.soap.serialise import inquiry_response, write_envelope
from app.soap.versions import SoapVersion
from tests.unit.soap.envelopes import SSO, payload, result_of

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

# Markup, characters XML cannot carry, Thai, and the empty string.
texts = st.one_of(
    st.just(""),
    st.text(alphabet=st.sampled_from("aก<>&\"'\x00\x1f\ufffe \t\n\r;]]>"), max_size=12),
    st.text(max_size=12),
)
months = st.builds(
    PayableMonth,
    month=texts,
    amount_satang=st.integers(-(10**9), 10**9),
    due_date=st.none() | st.dates(date(1990, 1, 1), date(2100, 12, 31)),
    overdue=st.booleans(),
    government_satang=st.none() | st.integers(0, 10**7),
)
results = st.builds(
    InquiryResult,
    national_id=texts,
    title=texts,
    first_name=texts,
    family_name=texts,
    section=st.sampled_from([39, 40]),
    status=texts,
    status_reason=st.none() | texts,
    ended_month=st.none() | texts,
    option=st.none() | st.integers(1, 3),
    months=st.lists(months, max_size=14).map(tuple),
    default_months=st.lists(texts, max_size=4).map(tuple),
    default_total_satang=st.integers(0, 10**8),
    savings_allowed=st.booleans(),
    max_savings_per_month_satang=st.integers(0, 10**6),
    as_of=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),  # a replay time; year 9999 in -05:00 has no +07:00
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=7)), timezone(-timedelta(hours=5))]
        ),
    ),
    served_by=st.sampled_from(list(ReadPath)),
    effective_date=st.none() | st.dates(date(1990, 1, 1), date(2100, 12, 31)),
    return_code=st.none() | texts,
    payment_period=st.none() | texts,
    payment_method=st.none() | texts,
    last_payment_date=st.none() | st.dates(date(1990, 1, 1), date(2100, 12, 31)),
    last_payment_satang=st.none() | st.integers(0, 10**9),
    amount_due_satang=st.none() | st.integers(0, 10**7),
    eligibility=st.none() | st.sampled_from(["eligible", "override"]),
    previous_memberships=st.lists(
        st.builds(
            EndedMembership,
            section=st.sampled_from([39, 40]),
            coverage_start=st.dates(date(1990, 1, 1), date(2100, 12, 31)),
            ended_month=texts,
            end_reason=st.none() | texts,
            option=st.none() | st.integers(1, 3),
        ),
        max_size=3,
    ).map(tuple),
)


def _baht(satang: int) -> str:
    return f"{satang // 100}.{satang % 100:02d}"  # non-negative amounts only


def _as_read(text: str) -> str:
    """What a parser gives back for ``text`` sent by a careful writer: characters XML 1.0
    cannot carry replaced by U+FFFD; a carriage return as it was, written as ``&#13;``, which
    a parser does not turn into a line feed as it does a raw one (XML 1.0 section 2.11)."""

    def carried(char: str) -> bool:
        code = ord(char)
        return (
            char in "\t\n\r"
            or 0x20 <= code <= 0xD7FF
            or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF
        )

    return "".join(char if carried(char) else "\ufffd" for char in text)


@settings(max_examples=200, deadline=None)
@given(results, st.sampled_from(list(SoapVersion)))
def test_the_answer_reads_back_as_the_result(result: InquiryResult, version: SoapVersion) -> None:
    written = write_envelope(version, inquiry_response(result))
    assert payload(written).tag == f"{{{SSO}}}InquireContributionResponse"
    answer = result_of(written)

    def text(name: str) -> str | None:
        found = answer.find(f"{{{SSO}}}{name}")
        assert found is not None, name
        if found.get(XSI_NIL) == "true":
            assert len(found) == 0 and not found.text
            return None
        return found.text or ""

    def optional(name: str) -> str | None:
        found = answer.find(f"{{{SSO}}}{name}")
        assert found is None or found.get(XSI_NIL) is None, name  # absent, never nil
        return None if found is None else found.text or ""

    for name, value in [
        ("nationalId", result.national_id),
        ("title", result.title),
        ("firstName", result.first_name),
        ("familyName", result.family_name),
        ("status", result.status),
        ("statusReason", result.status_reason),
        ("endedMonth", result.ended_month),
        ("option", None if result.option is None else str(result.option)),
        ("servedBy", result.served_by.value),
    ]:
        assert text(name) == (None if value is None else _as_read(value)), name
    for name, optional_value in [
        ("returnCode", result.return_code),
        ("paymentPeriod", result.payment_period),
        ("paymentMethod", result.payment_method),
    ]:
        expected = None if optional_value is None else _as_read(optional_value)
        assert optional(name) == expected, name
    for name, day in [
        ("effectiveDate", result.effective_date),
        ("lastPaymentDate", result.last_payment_date),
    ]:
        assert optional(name) == (None if day is None else day.isoformat()), name
    for name, satang in [
        ("lastPaymentAmount", result.last_payment_satang),
        ("amountDue", result.amount_due_satang),
    ]:
        assert optional(name) == (None if satang is None else _baht(satang)), name
    months = answer.findall(f"{{{SSO}}}payableMonths/{{{SSO}}}payableMonth")
    assert [m.findtext(f"{{{SSO}}}month") for m in months] == [
        _as_read(m.month) for m in result.months
    ]
    assert [
        m.get(XSI_NIL) for m in (m.find(f"{{{SSO}}}dueDate") for m in months) if m is not None
    ] == [None if m.due_date else "true" for m in result.months]
    assert [m.findtext(f"{{{SSO}}}governmentShare") for m in months] == [
        None if m.government_satang is None else _baht(m.government_satang) for m in result.months
    ]
    defaults = answer.findall(f"{{{SSO}}}defaultMonths/{{{SSO}}}month")
    assert [m.text or "" for m in defaults] == [_as_read(m) for m in result.default_months]
    # Contract 1.1: appended after servedBy, absent when there is nothing to say.
    names = [child.tag.removeprefix(f"{{{SSO}}}") for child in answer]
    assert names[names.index("servedBy") + 1 :] == (
        ["eligibility"] * (result.eligibility is not None)
        + ["previousMemberships"] * bool(result.previous_memberships)
    )
    assert optional("eligibility") == result.eligibility
    ended = answer.findall(f"{{{SSO}}}previousMemberships/{{{SSO}}}membership")
    assert [
        (
            int(m.findtext(f"{{{SSO}}}section") or 0),
            m.findtext(f"{{{SSO}}}coverageStart"),
            m.findtext(f"{{{SSO}}}endedMonth") or "",
            m.findtext(f"{{{SSO}}}endReason"),
            m.findtext(f"{{{SSO}}}option"),
        )
        for m in ended
    ] == [
        (
            m.section,
            m.coverage_start.isoformat(),
            _as_read(m.ended_month),
            None if m.end_reason is None else _as_read(m.end_reason),
            None if m.option is None else str(m.option),
        )
        for m in result.previous_memberships
    ]
