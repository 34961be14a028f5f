"""Attacks on the s17 fixes that need the database (70ebdf1's CSV apostrophe rule): each test
fails on the code it names because of the defect its docstring states."""

from __future__ import annotations

import pytest

from app.domain.spreadsheet_cells import escape_cell
from app.feed.repository import _cell
from app.main import Gateway

pytestmark = pytest.mark.db

#: Names as a person may hold them: a formula start, and apostrophes before one.
NAMES = ("=1", "'=1", "''=1", "'''-T", "''@SUM(A1)")


async def test_the_partner_feeds_csv_cells_follow_escape_cells_rule(gateway: Gateway) -> None:
    """70ebdf1 made ``escape_cell`` give a value that already reads as escaped (apostrophes,
    then a formula's start) one more apostrophe, so that one apostrophe taken off reads every
    value back exactly. The partner feed's CSV cells, which ``app.feed.repository._cell`` says
    follow ``escape_cell``'s rule (FORMULA_SQL_CLASS), still handle one apostrophe only:
    ``''=1`` is written as it is, the very cell ``'=1`` is written as, so two names give one
    cell and the feed's CSV cannot be read back as the gateway's own CSV files are."""
    query = f"SELECT {_cell('$1::text')}"
    written = {name: await gateway.db.primary.fetchval(query, name) for name in NAMES}
    expected = {name: escape_cell(name) for name in NAMES}
    assert written == expected, f"the feed writes {written}, escape_cell {expected}" + (
        " (two names, one cell)" if len(set(written.values())) < len(NAMES) else ""
    )
