"""`ssogw seed` into empty tables: indexes and constraints dropped and built again in one
transaction; refused on tables that hold persons; rolled back whole when it fails."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import asyncpg
import pytest

from app.db.local_pair import LocalPair, PairRecord
from app.insured.demo_data import TASK_PERSONS, SeedPlan, former_s39, generate, load, loader
from tests.support.scratch_db import migrated_template

pytestmark = pytest.mark.db

PLAN = SeedPlan(persons=2_500, seed=11, as_of=date(2026, 11, 26))
CONTENT = """
    SELECT (SELECT md5(string_agg(p::text, '|' ORDER BY national_id))
              FROM (SELECT {persons} FROM insured_persons) p),
           (SELECT md5(string_agg(m::text, '|' ORDER BY national_id, month))
              FROM (SELECT {months} FROM paid_months) m),
           (SELECT md5(string_agg(c::text, '|' ORDER BY national_id))
              FROM (SELECT {closed} FROM closed_memberships) c)
""".format(
    persons=", ".join(loader.PERSON_COLUMNS),
    months=", ".join(loader.MONTH_COLUMNS),
    closed=", ".join(loader.CLOSED_COLUMNS),
)


async def _state(dsn: str) -> tuple[list[tuple[str, ...]], tuple[int, ...], bool]:
    """The catalogue of the seeded tables, their row counts, and whether every index is valid
    and every constraint validated as it should be."""
    conn = await asyncpg.connect(dsn)
    try:
        catalogue = await loader.catalogue(conn)
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM insured_persons), (SELECT count(*) FROM paid_months),"
            " (SELECT count(*) FROM closed_memberships)"
        )
        valid = await conn.fetchval(
            "SELECT bool_and(indisvalid AND indisready) FROM pg_index"
            " WHERE indrelid = ANY($1::regclass[])",
            list(loader.LOADED),
        )
    finally:
        await conn.close()
    return catalogue, tuple(counts), bool(valid)


async def _content(dsn: str) -> tuple[str, ...]:
    conn = await asyncpg.connect(dsn)
    try:
        return tuple(await conn.fetchrow(CONTENT))
    finally:
        await conn.close()


async def test_a_first_load_builds_every_index_and_constraint_again(
    pg_pair: tuple[LocalPair, PairRecord],
) -> None:
    """Several loader processes, ranges of persons COPYed in binary: the same catalogue after,
    and the same rows as adding the persons one range at a time through ON CONFLICT."""
    _, record = pg_pair
    plan = SeedPlan(persons=TASK_PERSONS + 1_500, seed=11, as_of=date(2026, 11, 26))
    steps: list[str] = []
    async with migrated_template(record, "seedfast") as database:
        before = await _state(database.owner_dsn)
        assert before[1] == (0, 0, 0) and before[2]
        assert await load(database.owner_dsn, plan, workers=2, say=steps.append) == plan.persons
        catalogue, counts, valid = await _state(database.owner_dsn)
        fast = await _content(database.owner_dsn)
    assert catalogue == before[0] and valid
    assert counts[0] == plan.persons and counts[1] > 4 * plan.persons and counts[2] > 0
    # Dropped: every index but the primary key the foreign keys rest on; built again.
    built = [step for step in steps if step.startswith(("ALTER TABLE", "CREATE"))]
    assert len(built) == 6 and not any("insured_persons_pkey" in step for step in built)
    async with migrated_template(record, "seedslow") as database:
        conn = await asyncpg.connect(database.owner_dsn)
        try:  # one person on record: the load takes the path for tables that hold persons
            await conn.execute(
                "INSERT INTO insured_persons (national_id, title, first_name, last_name, section,"
                " effective_date) VALUES ('1000000000001', 'นาย', 'ก', 'ข', 39, '2020-01-01')"
            )
        finally:
            await conn.close()
        assert await load(database.owner_dsn, plan, workers=2) == plan.persons
        conn = await asyncpg.connect(database.owner_dsn)
        try:
            await conn.execute("DELETE FROM insured_persons WHERE national_id = '1000000000001'")
        finally:
            await conn.close()
        assert await _content(database.owner_dsn) == fast


async def test_the_fast_path_is_refused_on_tables_that_hold_persons(
    pg_pair: tuple[LocalPair, PairRecord],
) -> None:
    _, record = pg_pair
    async with migrated_template(record, "seedrefuse") as database:
        assert await load(database.owner_dsn, PLAN) == PLAN.persons
        before = await _state(database.owner_dsn)
        conn = await asyncpg.connect(database.owner_dsn)
        try:
            bigger = SeedPlan(persons=3_000, seed=PLAN.seed, as_of=PLAN.as_of)
            assert await loader.load_empty(conn, bigger) is None  # nothing dropped or loaded
        finally:
            await conn.close()
        assert await _state(database.owner_dsn) == before


async def test_a_load_that_fails_midway_leaves_the_tables_as_they_were(
    pg_pair: tuple[LocalPair, PairRecord],
) -> None:
    """The first range is stored, then the load fails: the transaction rolls back, the tables
    are empty with every index and constraint, and the message says there is nothing to repair."""
    _, record = pg_pair
    plan = SeedPlan(persons=TASK_PERSONS + 10, seed=11, as_of=date(2026, 11, 26))

    def fail(_persons: int) -> None:
        raise RuntimeError("stopped by the test")

    async with migrated_template(record, "seedfail") as database:
        before = await _state(database.owner_dsn)
        with pytest.raises(RuntimeError, match=r"rolled back.*nothing needs repair") as failed:
            await load(database.owner_dsn, plan, progress=fail)
        assert "stopped by the test" in str(failed.value)
        assert await _state(database.owner_dsn) == before
        assert await load(database.owner_dsn, PLAN) == PLAN.persons  # and it can be run again


async def test_without_leave_to_skip_foreign_key_triggers_they_are_dropped_and_validated(
    pg_pair: tuple[LocalPair, PairRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role that may not set session_replication_role (as in a managed cluster): the loaded
    tables' foreign keys are dropped too, and added again (validated) after the load."""
    _, record = pg_pair
    real_set = loader._set

    async def refuse_replication_role(conn: asyncpg.Connection, name: str, value: str) -> bool:
        return False if name == "session_replication_role" else await real_set(conn, name, value)

    monkeypatch.setattr(loader, "_set", refuse_replication_role)
    steps: list[str] = []
    async with migrated_template(record, "seedfk") as database:
        before = await _state(database.owner_dsn)
        assert await load(database.owner_dsn, PLAN, say=steps.append) == PLAN.persons
        after = await _state(database.owner_dsn)
    assert after[0] == before[0] and after[2] and after[1][0] == PLAN.persons
    foreign_keys = [step for step in steps if "FOREIGN KEY" in step]
    assert len(foreign_keys) == 3  # paid_months (2) and closed_memberships (1)


async def test_seeding_again_adds_no_ended_membership_to_a_person_on_record(
    pg_pair: tuple[LocalPair, PairRecord],
) -> None:
    """A database seeded before the rule that picks the Section 40 members with an ended
    Section 39 membership changed (here: seeded with none) is seeded again with more persons:
    the persons on record keep the history they have, and only the persons added come with
    theirs ("into tables that hold persons it adds only the missing ones")."""
    _, record = pg_pair
    seeded_before = replace(PLAN, former_s39_share=0.0)
    bigger = replace(PLAN, persons=3_000)
    theirs = {
        row[0]
        for person, _ in generate(bigger, start=PLAN.persons)
        for row in former_s39(person, share=bigger.former_s39_share)
    }
    async with migrated_template(record, "seedagain") as database:
        assert await load(database.owner_dsn, seeded_before) == PLAN.persons
        assert await load(database.owner_dsn, bigger) == bigger.persons - PLAN.persons
        conn = await asyncpg.connect(database.owner_dsn)
        try:
            closed = {r[0] for r in await conn.fetch("SELECT national_id FROM closed_memberships")}
        finally:
            await conn.close()
    assert theirs and closed == theirs


async def test_seeding_again_later_adds_no_paid_month_to_a_person_on_record(
    pg_pair: tuple[LocalPair, PairRecord],
) -> None:
    """``ssogw seed`` draws paid months up to its business date (today, by default): seeded
    again months later with more persons, the persons on record keep the months they have,
    and only the persons added come with theirs. A month marked paid that no one paid is
    refused to the payer at the counter (client.already_paid)."""
    _, record = pg_pair
    later = replace(PLAN, persons=3_000, as_of=date(2027, 3, 26))
    months = "SELECT national_id, section, month FROM paid_months"
    async with migrated_template(record, "seedlater") as database:
        assert await load(database.owner_dsn, PLAN) == PLAN.persons
        conn = await asyncpg.connect(database.owner_dsn)
        try:
            before = {tuple(row) for row in await conn.fetch(months)}
            assert await load(database.owner_dsn, later) == later.persons - PLAN.persons
            on_record = {
                tuple(row)
                for row in await conn.fetch(months + " WHERE national_id = ANY($1::text[])",
                                            [p[0] for p, _ in generate(PLAN)])
            }  # fmt: skip
        finally:
            await conn.close()
    assert before and on_record == before
