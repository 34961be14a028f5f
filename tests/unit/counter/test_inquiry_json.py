"""The hot route's hand-written inquiry answer is the model's answer, byte for byte."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.counter.inquiry_schemas import InquiryOut, inquiry_json
from app.counter.records import EndedMembership, InquiryResult, PayableMonth
from app.db.read_meta import ReadPath

_text = st.text(max_size=12)  # any Unicode: Thai, quotes, controls, surrogates left out
_maybe_text = st.none() | _text
_satang = st.integers(min_value=-(10**9), max_value=10**9)
_month = st.from_regex(r"\A[0-9]{4}-[0-9]{2}\Z")
_zones = st.sampled_from([UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-3))])
_instant = st.builds(
    lambda moment, zone: moment.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    _zones,
)
_payable = st.builds(
    PayableMonth, _month, _satang, st.none() | st.dates(), st.booleans(), st.none() | _satang
)
_ended = st.builds(
    EndedMembership,
    st.sampled_from([39, 40]),
    st.dates(),
    _month,
    _maybe_text,
    st.none() | st.integers(1, 3),
)


@st.composite
def _results(draw: st.DrawFn) -> InquiryResult:
    return InquiryResult(
        national_id=draw(st.from_regex(r"\A[0-9]{13}\Z")),
        title=draw(_text),
        first_name=draw(_text),
        family_name=draw(_text),
        section=draw(st.sampled_from([39, 40])),
        status=draw(st.sampled_from(["active", "terminated", "inactive"])),
        status_reason=draw(_maybe_text),
        ended_month=draw(st.none() | _month),
        option=draw(st.none() | st.integers(1, 3)),
        months=tuple(draw(st.lists(_payable, max_size=4))),
        default_months=tuple(draw(st.lists(_month, max_size=3))),
        default_total_satang=draw(_satang),
        savings_allowed=draw(st.booleans()),
        max_savings_per_month_satang=draw(_satang),
        as_of=draw(_instant),
        served_by=draw(st.sampled_from(list(ReadPath))),
        effective_date=draw(st.none() | st.dates()),
        return_code=draw(_maybe_text),
        payment_period=draw(_maybe_text),
        payment_method=draw(_maybe_text),
        last_payment_date=draw(st.none() | st.dates()),
        last_payment_satang=draw(st.none() | _satang),
        amount_due_satang=draw(st.none() | _satang),
        eligibility=draw(st.sampled_from([None, "eligible", "override"])),
        previous_memberships=tuple(draw(st.lists(_ended, max_size=2))),
    )


def _model_json(result: InquiryResult) -> bytes:
    model = InquiryOut.of(result)
    return InquiryOut.__pydantic_serializer__.to_json(model, by_alias=True)


@settings(max_examples=200, deadline=None)
@given(_results())
def test_the_hand_written_answer_is_the_models(result: InquiryResult) -> None:
    assert inquiry_json(result) == _model_json(result)


def test_a_whole_second_and_a_zero_offset_are_written_as_the_model_writes_them() -> None:
    base = InquiryResult(
        national_id="3100600445635", title="นาง", first_name='"ส"', family_name="\u202eใจ",
        section=40, status="active", status_reason=None, ended_month=None, option=2,
        months=(PayableMonth("2024-06", 10000, None, False, 5000),),
        default_months=("2024-06",), default_total_satang=10000, savings_allowed=True,
        max_savings_per_month_satang=100000, as_of=datetime(2024, 6, 12, 2, 30, tzinfo=UTC),
        served_by=ReadPath.REPLICA, last_payment_date=date(2024, 5, 20),
    )  # fmt: skip
    assert inquiry_json(base) == _model_json(base)
    assert b'"asOf":"2024-06-12T02:30:00Z"' in inquiry_json(base)


def _person(**changes: object) -> InquiryResult:
    base = InquiryResult(
        national_id="3100600445635", title="นาย", first_name="ก", family_name="ข",
        section=40, status="active", status_reason=None, ended_month=None, option=1,
        months=(PayableMonth("2024-06", 10000, None, False, 5000),
                PayableMonth("2024-07", 10000, None, False, 5000)),
        default_months=("2024-06",), default_total_satang=10000, savings_allowed=False,
        max_savings_per_month_satang=0, as_of=datetime(2024, 6, 12, 2, 30, tzinfo=UTC),
        served_by=ReadPath.REPLICA,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_name_that_reads_like_the_key_the_months_go_before_does_not_move_them() -> None:
    # The months are spliced in before the text's first ',"defaultMonths":'.
    odd = _person(first_name=',"defaultMonths":[', family_name='"defaultMonths":"x"')
    assert inquiry_json(odd) == _model_json(odd)


def test_the_months_are_written_for_each_tuple_whatever_was_written_before() -> None:
    # The months' text is kept by the identity of their tuple: equal tuples, new tuples and
    # tuples of other months each get their own months.
    first = _person()
    same_months = _person(months=tuple(list(first.months)))
    other = _person(months=(PayableMonth("2025-01", 20000, date(2025, 2, 15), True, None),))
    for result in (first, same_months, other, first, other, _person(months=())):
        assert inquiry_json(result) == _model_json(result)


# Session 22's attack on the answer written through orjson: it refuses an integer past 64 bits.
@pytest.mark.parametrize(
    "changes",
    [
        {"section": 2**64},
        {"section": -(2**63) - 1},
        {"option": 2**70},
        {
            "previous_memberships": (
                EndedMembership(2**64, date(2020, 1, 1), "2020-01", None, 2**65),
            )
        },
    ],
    ids=["section past 64 bits", "section below -2**63", "option", "an ended membership's"],
)
def test_an_integer_past_64_bits_is_written_as_the_model_writes_it(
    changes: dict[str, object],
) -> None:
    """Defect: ``inquiry_json`` writes through ``orjson.dumps``, which refuses an integer
    outside the 64-bit range (``TypeError: Integer exceeds 64-bit range``). ``section`` and
    ``option`` (the answer's and an ended membership's) are plain ``int`` in the models
    (``SectionOut`` is ``int``; ``option: int | None``), so the model writes such a number and
    the standard library's encoder, used before, wrote the same digits: the hot route now
    answers 500 where the route (and the hot route before) answered 200.

    Correct: the same bytes as the model's serialiser, whatever the integer's size.
    """
    result = _person(**changes)
    assert inquiry_json(result) == _model_json(result)
