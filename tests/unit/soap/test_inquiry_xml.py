"""The inquiry's direct writer writes what the element tree writes, byte for byte."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from app.counter.records import InquiryResult, PayableMonth
from app.db.read_meta import ReadPath
from app.soap.inquiry_xml import inquiry_xml
from app.soap.serialise import element_xml, envelope_around, inquiry_response, write_envelope
from app.soap.versions import SoapVersion
from tests.unit.soap.fake_counter import ENDED_ID, S39_ID, S40_ID, person

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
    government_satang=st.integers(0, 10**7),
)
results = st.builds(
    InquiryResult,
    national_id=texts,
    title=texts,
    first_name=texts,
    last_name=texts,
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
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=7)), timezone(-timedelta(hours=5))]
        ),
    ),
    served_by=st.sampled_from(list(ReadPath)),
)


@settings(max_examples=400, deadline=None)
@given(results)
def test_the_direct_writer_matches_the_tree(result: InquiryResult) -> None:
    assert inquiry_xml(result) == element_xml(inquiry_response(result))


def test_the_seeded_people_come_out_alike_in_both_envelopes() -> None:
    for national_id in (S39_ID, S40_ID, ENDED_ID):
        result = person(national_id)
        for version in SoapVersion:
            direct = envelope_around(version, inquiry_xml(result))
            assert direct == write_envelope(version, inquiry_response(result))
