"""The seed's rows stay what they were, and their binary COPY encoding is exactly those rows.

The persons' and paid months' digests were taken from the generator before it was rewritten
for speed (``random.Random`` per person, ``randrange``/``choice``, ``check_digit``): the bench,
the tests and every seeded database depend on the rows a seed and a size give, so a change of a
single row fails here. The ended memberships' digests are those since the Section 40 members
who had one are chosen by a hash of the ID (``_former_s39_drawn``) rather than by seeding the
person's own generator, which took a quarter of the encoding.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import date, timedelta

import pytest

from app.domain.national_id import check_digit, validate_national_id
from app.insured.demo_data import (
    CLOSED_COLUMNS,
    MONTH_COLUMNS,
    PERSON_COLUMNS,
    SeedPlan,
    former_s39,
    generate,
    national_id_for,
)
from app.insured.demo_data.copy_data import COLUMN_TYPES, Encoder

GOLDEN = [  # the plan, the range, the persons' and months' digest, the ended memberships'
    (
        SeedPlan(persons=20_000, seed=1, as_of=date(2026, 11, 26)),
        0,
        None,
        "163168fe4ec07a354eb939c5aa8b1f459e6837c0c1d5bfa908b641b5eede0707",
        "97313144defe49be26d2cfedfe519522f80ccab7886585d4a40425a9ec09d6c2",
    ),
    (  # an unaligned range across a chunk boundary (the stream is replayed up to its start)
        SeedPlan(persons=25_000, seed=7, as_of=date(2024, 2, 29)),
        9_990,
        10_020,
        "ccd9c2098e13405216b732288dd39550adce913fbfc1b4484766c951696aa041",
        "fabfc7f9c6baeb2059b8bee5c3341d87a25a2db1539a07bf405fcc5efdd61932",
    ),
]


@pytest.mark.parametrize(("plan", "start", "stop", "persons", "ended"), GOLDEN)
def test_the_rows_are_those_of_the_generator_before_it_was_made_fast(
    plan: SeedPlan, start: int, stop: int | None, persons: str, ended: str
) -> None:
    people, closed = hashlib.sha256(), hashlib.sha256()
    for person, months in generate(plan, start=start, stop=stop):
        people.update(repr((person, months)).encode())
        closed.update(repr(former_s39(person, share=plan.former_s39_share)).encode())
    assert (people.hexdigest(), closed.hexdigest()) == (persons, ended)


def test_about_one_section_40_member_in_twenty_had_a_section_39_membership() -> None:
    plan = SeedPlan(persons=60_000, seed=11, as_of=date(2026, 11, 26))
    s40 = [person for person, _ in generate(plan) if person[4] == 40]
    for share in (plan.former_s39_share, 0.5):
        had = sum(1 for person in s40 if former_s39(person, share=share))
        assert abs(had / len(s40) - share) < 4 * (share * (1 - share) / len(s40)) ** 0.5
    assert not any(former_s39(person, share=0.0) for person in s40[:5_000])
    assert all(former_s39(person, share=1.0) for person in s40[:5_000])


def test_the_check_digit_tables_agree_with_the_check_digit() -> None:
    for seed in (1, 7, 99):
        for index in [*range(0, 5_000), *range(12_999_000, 13_000_000)]:
            nid = national_id_for(index, seed=seed)
            assert nid[-1] == check_digit(nid[:12]) and validate_national_id(nid) == nid


# --- PostgreSQL's binary COPY format, read back ----------------------------------------------
def _decode_value(kind: str, data: bytes) -> object:
    if kind == "text":
        return data.decode()
    if kind == "date":
        return date(2000, 1, 1) + timedelta(days=struct.unpack(">i", data)[0])
    return struct.unpack({"smallint": ">h", "integer": ">i", "bigint": ">q"}[kind], data)[0]


def decode(stream: bytes, columns: tuple[str, ...]) -> list[tuple[object, ...]]:
    assert stream[:19] == b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    rows, at = [], 19
    while True:
        (count,) = struct.unpack_from(">h", stream, at)
        at += 2
        if count == -1:
            assert at == len(stream)
            return rows
        assert count == len(columns)
        row: list[object] = []
        for column in columns:
            (size,) = struct.unpack_from(">i", stream, at)
            at += 4
            if size == -1:
                row.append(None)
                continue
            row.append(_decode_value(COLUMN_TYPES[column], stream[at : at + size]))
            at += size
        rows.append(tuple(row))


def test_the_copy_data_is_the_generated_rows() -> None:
    plan = SeedPlan(persons=12_000, seed=3, as_of=date(2026, 11, 26))
    encoder = Encoder(plan)
    for start, stop in ((0, 4_000), (9_000, 12_000)):  # the second across a chunk boundary
        chunk = encoder.chunk(start, stop)
        generated = list(generate(plan, start=start, stop=stop))
        people = [person for person, _ in generated]
        months = [month for _, paid in generated for month in paid]
        closed = [row for p in people for row in former_s39(p, share=plan.former_s39_share)]
        assert decode(chunk.person_data, PERSON_COLUMNS) == people
        assert decode(chunk.month_data, MONTH_COLUMNS) == months
        assert decode(chunk.closed_data, CLOSED_COLUMNS) == closed
        assert (chunk.persons, chunk.months, chunk.closed) == (
            len(people),
            len(months),
            len(closed),
        )
        assert closed and any(person[4] == 39 for person in people)  # every kind of row
