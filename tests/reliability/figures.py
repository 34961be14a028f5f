"""The figures of a reliability run, collected by the tests and printed at the end of the session.

Tests add what they measured; ``conftest.pytest_terminal_summary`` prints it as a table. The
figures live in this process only: nothing is written to the repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.reliability.ledger_check import AuditTally


@dataclass
class CrashFigures:
    """The SIGKILL test: confirms sent, acknowledged, found again after the restart."""

    clients: int = 0
    sent: int = 0  # first attempts of the confirms (each a different person and transaction)
    acknowledged: int = 0  # answered with a ConfirmPaymentResponse before the kill
    cut_off: int = 0  # in flight when the server was killed: no answer
    refused: int = 0  # sent after the kill: the connection was refused
    found: int = 0  # acknowledged confirms found in the ledger after the restart
    lost: int = 0  # acknowledged but not in the ledger
    doubled: int = 0  # payments found more than once (by transaction id or by person)
    half_written: int = 0  # payments whose paid_months rows do not match their months
    committed_unacknowledged: int = 0  # committed although the client never heard
    retried: int = 0  # unacknowledged confirms sent again with the same transaction id
    retried_replayed: int = 0  # ... answered as a replay of the committed one
    final_payments: int = 0  # payments in the ledger after the retries (one per transaction)
    audit_missing: int = 0  # acknowledged confirms without their audit record
    audit_without_payment: int = 0  # 'ok' confirm audit records whose payment is not there
    seconds: float = 0.0
    left_unlinked: int = 0  # records committed but not yet linked when the process died
    audit: AuditTally | None = None  # after the restart and the retries
    chain_checked: int = 0  # records of the whole chain recomputed at the end
    chain_ok: bool = False


@dataclass
class CancelFigures:
    """The SIGKILL test's second half: the same payments cancelled, killed half-way."""

    sent: int = 0
    acknowledged: int = 0
    cut_off: int = 0  # in flight when the server was killed, or refused while it was down
    committed_unacknowledged: int = 0  # cancelled although the client never heard
    left_unlinked: int = 0
    at_restart: AuditTally | None = None  # before any retry
    retried: int = 0
    cancelled: int = 0  # payments cancelled after the retries
    audit: AuditTally | None = None  # after the retries


@dataclass
class HostileAnswer:
    """One hostile input and how the gateway answered it."""

    name: str
    protocol: str
    answer: str


@dataclass
class RunFigures:
    crash: CrashFigures | None = None
    cancels: CancelFigures | None = None
    hostile: list[HostileAnswer] = field(default_factory=list)
    fuzz_examples: int = 0
    fuzz_outcomes: dict[str, int] = field(default_factory=dict)
    rss_before: int = 0
    rss_after: int = 0
    notes: list[str] = field(default_factory=list)

    def hostile_answer(self, name: str, protocol: str, answer: str) -> None:
        self.hostile.append(HostileAnswer(name, protocol, answer))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def lines(self) -> list[str]:
        """The summary table, line by line."""
        out: list[str] = []
        crash = self.crash
        if crash is not None:
            out += [
                f"SIGKILL during confirms ({crash.clients} concurrent clients, "
                f"{crash.seconds:.1f} s):",
                f"  {'sent':<34}{crash.sent:>8}",
                f"  {'acknowledged':<34}{crash.acknowledged:>8}",
                f"  {'cut off in flight by the kill':<34}{crash.cut_off:>8}",
                f"  {'refused while the server was down':<34}{crash.refused:>8}",
                f"  {'found in ledger (acknowledged)':<34}{crash.found:>8}",
                f"  {'lost':<34}{crash.lost:>8}",
                f"  {'doubled':<34}{crash.doubled:>8}",
                f"  {'half-written':<34}{crash.half_written:>8}",
                f"  {'committed but unacknowledged':<34}{crash.committed_unacknowledged:>8}",
                f"  {'retried with the same txn id':<34}{crash.retried:>8}",
                f"  {'  of which answered as replay':<34}{crash.retried_replayed:>8}",
                f"  {'payments after retries':<34}{crash.final_payments:>8}",
                f"  {'acknowledged without audit':<34}{crash.audit_missing:>8}",
                f"  {'ok audit without payment':<34}{crash.audit_without_payment:>8}",
                f"  {'records unlinked at the kill':<34}{crash.left_unlinked:>8}",
            ]
            if crash.audit is not None:
                out += _tally("confirms' audit after retries", crash.audit)
        cancels = self.cancels
        if cancels is not None:
            out += [
                "SIGKILL during cancels of those payments:",
                f"  {'sent':<34}{cancels.sent:>8}",
                f"  {'acknowledged':<34}{cancels.acknowledged:>8}",
                f"  {'cut off by the kill (or refused)':<34}{cancels.cut_off:>8}",
                f"  {'cancelled but unacknowledged':<34}{cancels.committed_unacknowledged:>8}",
                f"  {'records unlinked at the kill':<34}{cancels.left_unlinked:>8}",
            ]
            if cancels.at_restart is not None:
                out += _tally("cancels' audit at the restart", cancels.at_restart)
            out += [
                f"  {'retried':<34}{cancels.retried:>8}",
                f"  {'payments cancelled after retries':<34}{cancels.cancelled:>8}",
            ]
            if cancels.audit is not None:
                out += _tally("cancels' audit after retries", cancels.audit)
        if crash is not None and crash.chain_checked:
            verdict = "verifies" if crash.chain_ok else "BROKEN"
            out.append(f"  hash chain at the end: {crash.chain_checked} records, {verdict}")
        if self.hostile:
            out.append(f"hostile inputs tried: {len(self.hostile)}")
            width = max(len(h.name) for h in self.hostile) + 2
            out += [f"  {h.protocol:<5} {h.name:<{width}} {h.answer}" for h in self.hostile]
        if self.rss_before:
            growth = (self.rss_after - self.rss_before) / 2**20
            out.append(
                f"server RSS across the corpus: {self.rss_before / 2**20:.1f} MiB -> "
                f"{self.rss_after / 2**20:.1f} MiB ({growth:+.1f} MiB)"
            )
        if self.fuzz_examples:
            outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(self.fuzz_outcomes.items()))
            out.append(f"SOAP fuzz: {self.fuzz_examples} requests; {outcomes}")
        out += [f"note: {text}" for text in self.notes]
        return out


def _tally(title: str, tally: AuditTally) -> list[str]:
    return [
        f"  {title}:",
        f"    {'ok records (of which claims)':<32}{tally.records:>8} ({tally.claims})",
        f"    {'payments without a record':<32}{tally.without_record:>8}",
        f"    {'records without their payment':<32}{tally.without_payment:>8}",
        f"    {'lost (acknowledged, no record)':<32}{tally.lost:>8}",
        f"    {'doubled':<32}{tally.doubled:>8}",
        f"    {'waiting for their chain link':<32}{tally.unlinked:>8}",
    ]


FIGURES = RunFigures()
