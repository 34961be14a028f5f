"""Matching a partner's settlement file against the gateway's ledger of the same business day.

Lines pair up by the partner's transaction id. A pair is ``matched`` when the national ID,
section, months and amount all agree; otherwise the first difference names it (``person_differs``,
``months_differ`` — the section counts as part of what was paid for — then ``amount_differs``) and
the note lists every difference. A file line without a confirmed ledger row is ``only_in_file``
(the note says when the gateway has it cancelled, or when the file repeats a transaction id);
a confirmed ledger row no file line claimed is ``only_in_gateway``. Totals are kept per section.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from app.domain.months import Month
from app.settlement.bank_file import SettlementLine


class Outcome(StrEnum):
    """What became of a transaction; ``rank`` orders a report, mismatches first."""

    ONLY_IN_FILE = "only_in_file"
    ONLY_IN_GATEWAY = "only_in_gateway"
    PERSON_DIFFERS = "person_differs"
    MONTHS_DIFFER = "months_differ"
    AMOUNT_DIFFERS = "amount_differs"
    MATCHED = "matched"

    @property
    def rank(self) -> int:
        """Position in a report: 0 for the first kind of mismatch, 9 for matched."""
        return 9 if self is Outcome.MATCHED else list(Outcome).index(self)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One payment of the partner's business day, as the ledger holds it."""

    payment_id: int
    partner_txn_id: str
    national_id: str
    section: int
    months: tuple[Month, ...]
    amount_satang: int
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class MatchLine:
    """One line of a reconciliation result."""

    outcome: Outcome
    partner_txn_id: str
    line_no: int | None  # the file's line; None when only in the gateway
    national_id: str
    section: int
    file_months: tuple[Month, ...] | None = None
    file_amount_satang: int | None = None
    gateway_months: tuple[Month, ...] | None = None
    gateway_amount_satang: int | None = None
    payment_id: int | None = None
    note: str | None = None
    # The person of the gateway's payment (``payment_id``), as a report reads it back: another
    # person than ``national_id`` on a person_differs line, whose months and amount it shows.
    gateway_national_id: str | None = None


@dataclass(slots=True)
class SectionTotals:
    """Lines and satang of one section, on each side and matched."""

    file_lines: int = 0
    file_satang: int = 0
    gateway_lines: int = 0
    gateway_satang: int = 0
    matched_lines: int = 0
    matched_satang: int = 0

    @property
    def difference_satang(self) -> int:
        """File minus gateway: positive when the partner reports more money than recorded."""
        return self.file_satang - self.gateway_satang


@dataclass(slots=True)
class Summary:
    """Counts per outcome and totals per section of one reconciliation."""

    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    totals: dict[int, SectionTotals] = field(default_factory=dict)

    @property
    def mismatches(self) -> int:
        """Every line that is not matched."""
        return sum(n for outcome, n in self.counts.items() if outcome is not Outcome.MATCHED)

    def section(self, section: int) -> SectionTotals:
        """The totals of ``section``, created empty on first use."""
        return self.totals.setdefault(section, SectionTotals())


def _differences(line: SettlementLine, entry: LedgerEntry) -> list[str]:
    found = []
    if line.national_id != entry.national_id:
        found.append("national ID")
    if line.section != entry.section:
        found.append("section")
    if tuple(sorted(line.months)) != tuple(sorted(entry.months)):
        found.append("months")
    if line.amount_satang != entry.amount_satang:
        found.append("amount")
    return found


class Reconciler:
    """Holds one partner-day of ledger rows; matches file lines as they stream past."""

    def __init__(self, ledger: Iterable[LedgerEntry] = ()) -> None:
        self._open: dict[str, LedgerEntry] = {}
        self._cancelled: set[str] = set()
        self._claimed: dict[str, int] = {}  # transaction id -> the file line that claimed it
        self.summary = Summary()
        for entry in ledger:
            self.expect(entry)

    def expect(self, entry: LedgerEntry) -> None:
        """Add a ledger row (a cancelled one only explains a file line, it is not expected)."""
        if entry.cancelled:
            self._cancelled.add(entry.partner_txn_id)
            return
        self._open[entry.partner_txn_id] = entry
        totals = self.summary.section(entry.section)
        totals.gateway_lines += 1
        totals.gateway_satang += entry.amount_satang

    def match(self, line: SettlementLine) -> MatchLine:
        """The outcome of one file line."""
        totals = self.summary.section(line.section)
        totals.file_lines += 1
        totals.file_satang += line.amount_satang
        key = line.partner_txn_id
        entry = self._open.pop(key, None)
        first = self._claimed.setdefault(key, line.line_no)
        if entry is None:
            note = None
            if first != line.line_no:
                note = f"the file repeats the transaction id of line {first}"
            elif key in self._cancelled:
                note = "the gateway has this transaction cancelled"
            return self._count(MatchLine(Outcome.ONLY_IN_FILE, key, line.line_no,
                                         line.national_id, line.section, line.months,
                                         line.amount_satang, note=note))  # fmt: skip
        found = _differences(line, entry)
        if not found:
            outcome = Outcome.MATCHED
            totals.matched_lines += 1
            totals.matched_satang += line.amount_satang
        elif "national ID" in found:
            outcome = Outcome.PERSON_DIFFERS
        elif "months" in found or "section" in found:
            outcome = Outcome.MONTHS_DIFFER
        else:
            outcome = Outcome.AMOUNT_DIFFERS
        note = f"differs: {', '.join(found)}" if found else None
        return self._count(MatchLine(outcome, key, line.line_no, line.national_id, line.section,
                                     line.months, line.amount_satang, entry.months,
                                     entry.amount_satang, entry.payment_id, note))  # fmt: skip

    def leftovers(self) -> Iterator[MatchLine]:
        """Ledger rows no file line claimed (``only_in_gateway``), in payment order."""
        for entry in sorted(self._open.values(), key=lambda e: e.payment_id):
            yield self._count(MatchLine(Outcome.ONLY_IN_GATEWAY, entry.partner_txn_id, None,
                                        entry.national_id, entry.section,
                                        gateway_months=entry.months,
                                        gateway_amount_satang=entry.amount_satang,
                                        payment_id=entry.payment_id))  # fmt: skip
        self._open.clear()

    def _count(self, result: MatchLine) -> MatchLine:
        self.summary.counts[result.outcome] += 1
        return result


def reconcile(
    lines: Iterable[SettlementLine], ledger: Iterable[LedgerEntry]
) -> tuple[list[MatchLine], Summary]:
    """Every result line (file order, then the gateway's leftovers) and the summary."""
    reconciler = Reconciler(ledger)
    results = [reconciler.match(line) for line in lines]
    results.extend(reconciler.leftovers())
    return results, reconciler.summary
