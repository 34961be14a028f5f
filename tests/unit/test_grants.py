"""The grant table keeps the audit trail append-only: it refuses to give the service role more."""

from __future__ import annotations

import pytest

from app.db.grants import (
    DELETE,
    INSERT,
    LINK_QUEUES,
    SELECT,
    SERVICE_TABLES,
    UPDATE,
    TableGrant,
    check_append_only,
    grant,
    is_audit_table,
)


def test_the_shipped_grants_keep_every_audit_table_append_only() -> None:
    check_append_only()
    audit = {name: t for name, t in SERVICE_TABLES.items() if is_audit_table(name)}
    assert {"audit_log", "audit_chain"} <= set(audit)
    assert all(t.privileges <= {SELECT, INSERT} for n, t in audit.items() if n not in LINK_QUEUES)
    # The queue of records waiting for their link: DELETE, guarded by the owner's trigger.
    assert {n: t.privileges for n, t in audit.items() if n in LINK_QUEUES} == {
        "audit_unlinked": {SELECT, INSERT, DELETE}
    }


@pytest.mark.parametrize(
    ("name", "table", "refusal"),
    [
        ("audit_log", grant(SELECT, INSERT, UPDATE), "may SELECT and INSERT"),
        ("audit_log", grant(SELECT, DELETE), "may SELECT and INSERT"),
        ("audit_seals", grant(SELECT, INSERT, DELETE), "may SELECT and INSERT"),
        ("audit_log", grant(SELECT, INSERT, update=("outcome",)), "not a chain head"),
        ("payments", grant(SELECT, "TRUNCATE"), "never given"),
    ],
)
def test_a_grant_that_could_rewrite_the_trail_is_refused(
    name: str, table: TableGrant, refusal: str
) -> None:
    with pytest.raises(ValueError, match=refusal):
        check_append_only({name: table})


def test_a_chain_head_may_move_and_ordinary_tables_may_change() -> None:
    check_append_only(
        {
            "audit_chain": grant(SELECT, update=("last_seq", "last_hash")),
            "payments": grant(SELECT, INSERT, UPDATE, DELETE),
        }
    )
