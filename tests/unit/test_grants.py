"""The grant table keeps the audit trail append-only: it refuses to give the service role more."""

from __future__ import annotations

import pytest

from app.db.grants import (
    CHAIN_TABLES,
    DELETE,
    INSERT,
    SELECT,
    SERVICE_ROUTINES,
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
    assert {"audit_log", "audit_chain", "audit_unlinked"} <= set(audit)
    assert all(t.privileges <= {SELECT, INSERT} and not t.update_columns for t in audit.values())
    # The chain and its head: only read; the owner's functions append and move the head.
    assert {n: audit[n].privileges for n in CHAIN_TABLES} == {
        "audit_log": {SELECT}, "audit_chain": {SELECT}
    }  # fmt: skip
    assert SERVICE_ROUTINES == (
        "ssogw_audit_append",
        "ssogw_audit_append_records",
        "ssogw_audit_append_tails",
        "ssogw_audit_link",
        "ssogw_audit_link_tails",
        "ssogw_confirm_read",
    )


@pytest.mark.parametrize(
    ("name", "table", "refusal"),
    [
        ("audit_log", grant(SELECT, INSERT, UPDATE), "may SELECT and INSERT"),
        ("audit_log", grant(SELECT, DELETE), "may SELECT and INSERT"),
        ("audit_seals", grant(SELECT, INSERT, DELETE), "may SELECT and INSERT"),
        ("audit_log", grant(SELECT, INSERT, update=("outcome",)), "may SELECT and INSERT"),
        ("audit_chain", grant(SELECT, update=("last_seq", "last_hash")), "may SELECT and"),
        ("audit_log", grant(SELECT, INSERT), "through the owner's functions"),
        ("audit_unlinked", grant(SELECT, INSERT, DELETE), "may SELECT and INSERT"),
        ("payments", grant(SELECT, "TRUNCATE"), "never given"),
    ],
)
def test_a_grant_that_could_rewrite_the_trail_is_refused(
    name: str, table: TableGrant, refusal: str
) -> None:
    with pytest.raises(ValueError, match=refusal):
        check_append_only({name: table})


def test_the_chain_is_read_and_ordinary_tables_may_change() -> None:
    check_append_only(
        {
            "audit_chain": grant(SELECT),
            "audit_seals": grant(SELECT, INSERT),
            "payments": grant(SELECT, INSERT, UPDATE, DELETE),
        }
    )


def test_the_operations_guide_names_every_routine_the_service_may_call() -> None:
    """docs/operations.md ("Database roles") says what the service role may EXECUTE; a
    routine added to SERVICE_ROUTINES (0023's ``ssogw_confirm_read``) must be named there, not
    left out of a list that calls the audit functions 'the service's only EXECUTE'."""
    from pathlib import Path

    guide = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    assert [name for name in SERVICE_ROUTINES if f"`{name}`" not in guide] == []
    assert "nothing on the schema's functions" not in guide
