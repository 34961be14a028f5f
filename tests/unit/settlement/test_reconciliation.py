"""Matching file lines against the ledger of one partner-day."""

from __future__ import annotations

from app.domain.months import Month
from app.settlement.bank_file import SettlementLine
from app.settlement.reconciliation import LedgerEntry, Outcome, Reconciler, reconcile

JUNE, JULY = Month(2024, 6), Month(2024, 7)
A, B, C = "3100600445635", "1112034563562", "1234545678781"


def line(n: int, txn: str, nid: str, section: int, months: tuple[Month, ...], amount: int):  # type: ignore[no-untyped-def]
    return SettlementLine(n, txn, nid, section, months, amount)


def entry(pid: int, txn: str, nid: str, section: int, months: tuple[Month, ...], amount: int,
          cancelled: bool = False) -> LedgerEntry:  # fmt: skip
    return LedgerEntry(pid, txn, nid, section, months, amount, cancelled)


LEDGER = [
    entry(1, "T1", A, 40, (JUNE,), 7_000),
    entry(2, "T2", B, 39, (JUNE,), 43_200),
    entry(3, "T3", C, 40, (JUNE, JULY), 14_000),
    entry(4, "T4", A, 40, (JULY,), 7_000),
    entry(5, "T5", B, 40, (JUNE,), 7_000),
    entry(6, "T6", C, 40, (JUNE,), 7_000, cancelled=True),
    entry(7, "T7", C, 39, (JUNE,), 43_200),
]
FILE = [
    line(2, "T1", A, 40, (JUNE,), 7_000),  # matched
    line(3, "T2", B, 39, (JUNE,), 43_200),  # matched
    line(4, "T3", C, 40, (JUNE, JULY), 15_000),  # amount differs
    line(5, "T4", A, 40, (JUNE,), 7_000),  # months differ
    line(6, "T5", C, 40, (JUNE,), 7_000),  # another person
    line(7, "T6", C, 40, (JUNE,), 7_000),  # cancelled in the gateway
    line(8, "T8", A, 40, (JUNE,), 7_000),  # not in the ledger
    line(9, "T1", A, 40, (JUNE,), 7_000),  # the file repeats T1
]


def test_each_kind_of_outcome_with_its_note() -> None:
    results, summary = reconcile(FILE, LEDGER)
    assert [(r.partner_txn_id, r.outcome, r.line_no, r.note) for r in results] == [
        ("T1", Outcome.MATCHED, 2, None),
        ("T2", Outcome.MATCHED, 3, None),
        ("T3", Outcome.AMOUNT_DIFFERS, 4, "differs: amount"),
        ("T4", Outcome.MONTHS_DIFFER, 5, "differs: months"),
        ("T5", Outcome.PERSON_DIFFERS, 6, "differs: national ID"),
        ("T6", Outcome.ONLY_IN_FILE, 7, "the gateway has this transaction cancelled"),
        ("T8", Outcome.ONLY_IN_FILE, 8, None),
        ("T1", Outcome.ONLY_IN_FILE, 9, "the file repeats the transaction id of line 2"),
        ("T7", Outcome.ONLY_IN_GATEWAY, None, None),
    ]
    assert summary.counts == {
        Outcome.MATCHED: 2, Outcome.AMOUNT_DIFFERS: 1, Outcome.MONTHS_DIFFER: 1,
        Outcome.PERSON_DIFFERS: 1, Outcome.ONLY_IN_FILE: 3, Outcome.ONLY_IN_GATEWAY: 1,
    }  # fmt: skip
    assert summary.mismatches == 7


def test_both_sides_are_shown_on_a_difference() -> None:
    results, _ = reconcile(FILE[2:3], LEDGER[2:3])
    (diff,) = results
    assert (diff.file_amount_satang, diff.gateway_amount_satang) == (15_000, 14_000)
    assert diff.file_months == diff.gateway_months == (JUNE, JULY)
    assert diff.payment_id == 3


def test_totals_per_section_on_each_side() -> None:
    _, summary = reconcile(FILE, LEDGER)
    s39, s40 = summary.totals[39], summary.totals[40]
    assert (s39.file_lines, s39.file_satang, s39.gateway_lines, s39.gateway_satang) == (
        1, 43_200, 2, 86_400)  # fmt: skip
    assert (s39.matched_lines, s39.matched_satang, s39.difference_satang) == (1, 43_200, -43_200)
    # the cancelled T6 is not expected from the partner
    assert (s40.file_lines, s40.file_satang, s40.gateway_lines, s40.gateway_satang) == (
        7, 57_000, 4, 35_000)  # fmt: skip
    assert (s40.matched_lines, s40.matched_satang) == (1, 7_000)


def test_months_compare_as_sets_and_a_section_change_is_a_months_difference() -> None:
    reconciler = Reconciler([entry(1, "T1", A, 40, (JUNE, JULY), 14_000)])
    assert reconciler.match(line(2, "T1", A, 40, (JULY, JUNE), 14_000)).outcome is Outcome.MATCHED
    reconciler = Reconciler([entry(1, "T1", A, 40, (JUNE,), 7_000)])
    other = reconciler.match(line(2, "T1", A, 39, (JUNE,), 43_200))
    assert other.outcome is Outcome.MONTHS_DIFFER and other.note == "differs: section, amount"


def test_mismatches_rank_before_matches() -> None:
    ranks = sorted(Outcome, key=lambda o: o.rank)
    assert ranks[0] is Outcome.ONLY_IN_FILE and ranks[-1] is Outcome.MATCHED
    assert len({o.rank for o in Outcome}) == len(Outcome)


def test_leftovers_come_in_payment_order_and_only_once() -> None:
    reconciler = Reconciler(reversed(LEDGER))
    assert [r.payment_id for r in reconciler.leftovers()] == [1, 2, 3, 4, 5, 7]
    assert list(reconciler.leftovers()) == []
