"""The fixed-width record engine: fields at their columns, both ways, and the errors it raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.fixed_width import CONTROL, Field, Layout, RecordFamily, Value, digits
from app.errors import InvalidExtract, InvalidSettlementFile

FAMILY = RecordFamily(24, InvalidSettlementFile)
BLANKING = RecordFamily(24, InvalidExtract, blank_controls=True)
LINE = FAMILY.layout(
    Field("type", 1, 1), Field("name", 2, 10), Field("amount", 12, 6, numeric=True),
    Field("code", 20, 3),
)  # fmt: skip


@pytest.mark.parametrize(
    ("values", "text"),
    [
        ({"type": "D", "name": "Somchai", "amount": 1234, "code": "A1"},
         "DSomchai   001234  A1   "),
        ({"type": "D"}, "D" + " " * 23),  # left out: blank
        ({"type": "D", "name": None, "amount": None}, "D" + " " * 23),
        ({"name": "a name far too long"}, " a name far" + " " * 13),  # text is cut to its width
        ({"amount": 0}, " " * 11 + "000000" + " " * 7),
        ({"amount": 999_999}, " " * 11 + "999999" + " " * 7),
        ({"name": "นางสมหญิง"}, " นางสมหญิง " + " " * 13),  # a column is a character
        ({"name": "a\tb\x7f"}, " a\tb\x7f" + " " * 19),  # controls kept: this family keeps them
    ],
)  # fmt: skip
def test_values_are_laid_at_their_columns(values: dict[str, Value], text: str) -> None:
    assert LINE.format(values) == text
    assert len(text) == FAMILY.length


def test_a_blanking_family_writes_controls_as_spaces() -> None:
    layout = BLANKING.layout(Field("name", 1, 8))
    assert layout.format({"name": "a\tb\x7fc\ufffd"}) == "a b c   " + " " * 16


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("DSomchai   001234  A1   ", {"type": "D", "name": "Somchai", "amount": "001234",
                                      "code": "A1"}),
        (" " * 24, {"type": "", "name": "", "amount": "", "code": ""}),
        ("D two  wrds    12  xyz  ", {"type": "D", "name": "two  wrds", "amount": "12",
                                      "code": "xyz"}),
    ],
)  # fmt: skip
def test_a_line_is_cut_into_its_fields_without_padding(text: str, fields: dict[str, str]) -> None:
    assert LINE.parse(text) == fields


def test_a_layout_of_one_field_reads_it_whole() -> None:
    assert FAMILY.layout(Field("only", 3, 4)).parse("ab  cd efgh") == {"only": "cd"}


@pytest.mark.parametrize(
    ("error", "value", "message"),
    [
        (InvalidSettlementFile, 1_000_000, "amount 1000000 does not fit 6 digits."),
        (InvalidSettlementFile, -1, "amount -1 does not fit 6 digits."),
        (InvalidExtract, 10**9, "amount 1000000000 does not fit 6 digits."),
    ],
)
def test_a_number_that_does_not_fit_is_refused_with_the_familys_error(
    error: type[InvalidSettlementFile | InvalidExtract], value: int, message: str
) -> None:
    layout = RecordFamily(24, error).layout(Field("amount", 12, 6, numeric=True))
    with pytest.raises(error) as caught:
        layout.format({"amount": value})
    assert caught.value.message == message
    assert caught.value.details == {"field": "amount"}


@pytest.mark.parametrize(("name", "value"), [("amount", "12"), ("name", 12)])
def test_a_value_of_the_wrong_kind_is_a_programming_error(name: str, value: Value) -> None:
    with pytest.raises(TypeError, match=name):
        LINE.format({name: value})


@pytest.mark.parametrize(
    "fields",
    [
        (Field("a", 1, 5), Field("b", 5, 2)),  # overlap
        (Field("a", 3, 2), Field("b", 1, 1)),  # out of column order
        (Field("a", 20, 6),),  # past the record's end
        (Field("a", 0, 2),),  # columns count from 1
        (Field("a", 1, 0),),
        (Field("a", 1, 2), Field("a", 3, 2)),  # one name twice
        (),
    ],
)
def test_a_layout_whose_fields_do_not_fit_is_refused(fields: tuple[Field, ...]) -> None:
    with pytest.raises(ValueError):
        Layout(FAMILY, fields)


def test_a_layout_extends_and_names_its_fields() -> None:
    longer = LINE.extend(Field("tail", 23, 2))
    assert [field.name for field in longer] == ["type", "name", "amount", "code", "tail"]
    assert longer.field("amount") == Field("amount", 12, 6, numeric=True)
    assert (longer.field("tail").start, longer.field("tail").end) == (23, 24)


@pytest.mark.parametrize(
    ("raw", "reason", "details"),
    [
        (b"x" * 23 + b"\r\n", "length", {"length": 23}),
        (b"x" * 25, "length", {"length": 25}),
        (b"x" * 4 + b"\xdb" + b"x" * 19, "encoding", {"column": 5}),  # no character in TIS-620
        (b"x" * 9 + b"\x9f" + b"x" * 14, "encoding", {"column": 10}),  # a C1 control
        (b"\tx" + b"x" * 22, "encoding", {"column": 1}),
    ],
)
def test_a_bad_record_is_refused_naming_its_line_and_column(
    raw: bytes, reason: str, details: dict[str, int]
) -> None:
    with pytest.raises(InvalidSettlementFile) as caught:
        FAMILY.decode(raw, 7)
    assert caught.value.details == {"line": 7, "reason": reason, **details}
    assert caught.value.message.startswith("Line 7: ")


def test_the_encoding_error_says_which_byte() -> None:
    with pytest.raises(InvalidSettlementFile, match=r"byte 0xDB at column 5 is not TIS-620"):
        FAMILY.decode(b"x" * 4 + b"\xdb" + b"x" * 19, 1)
    with pytest.raises(InvalidSettlementFile, match="must be 24 bytes, this one has 3"):
        FAMILY.decode(b"abc\n", 1)


@pytest.mark.parametrize("end", [b"\r\n", b"\n", b""])
def test_a_record_is_tis620_with_a_line_end(end: bytes) -> None:
    record = LINE.encode({"type": "D", "name": "สมชาย", "amount": 5})
    assert record.endswith(b"\r\n") and len(record) == 26
    assert FAMILY.decode(record.removesuffix(b"\r\n") + end, 1) == LINE.format(
        {"type": "D", "name": "สมชาย", "amount": 5}
    )


def test_a_character_tis620_lacks_becomes_one_question_mark() -> None:
    record = LINE.encode({"name": "Zoë😀"})
    assert record[1:11] == b"Zo??      "


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("000123", 123), ("", None), ("12a", None), (" 1", None), ("-1", None),
     ("๑๒", None), ("²", None)],
)  # fmt: skip
def test_digits_are_ascii_digits_only(text: str, value: int | None) -> None:
    assert digits(text) == value


# --- format then parse gives the values back -----------------------------------------------------
def _readable(char: str) -> bool:
    try:
        return char.encode("tis_620").decode("cp874") == char and not CONTROL.match(char)
    except UnicodeError:
        return False


TIS620 = "".join(
    c for c in map(chr, range(0x20, 0x0E60)) if _readable(c) and (c == " " or not c.isspace())
)
ROUND = RecordFamily(40, InvalidSettlementFile, blank_controls=True).layout(
    Field("type", 1, 1), Field("name", 3, 20), Field("amount", 23, 13, numeric=True),
    Field("flag", 40, 1),
)  # fmt: skip


def _text(width: int) -> st.SearchStrategy[str]:
    return st.text(TIS620, max_size=width).map(str.strip)


@given(
    st.fixed_dictionaries({
        "type": _text(1), "name": _text(20), "amount": st.integers(0, 10**13 - 1),
        "flag": _text(1),
    })
)  # fmt: skip
def test_format_then_parse_gives_the_values_back(values: dict[str, str | int]) -> None:
    line = ROUND.family.decode(ROUND.encode(values), 1)
    assert len(line) == 40
    back = ROUND.parse(line)
    assert {**back, "amount": digits(back["amount"])} == values
