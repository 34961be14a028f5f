"""A settlement report as one JSON-ready document: camelCase, amounts in baht as strings."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from app.domain.money import to_baht
from app.domain.months import Month
from app.settlement.reconciliation import MatchLine, Outcome

if TYPE_CHECKING:
    from app.settlement.service import SettlementReport


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _months(months: tuple[Month, ...] | None) -> list[str] | None:
    return None if months is None else [str(month) for month in months]


def _baht(satang: int | None) -> str | None:
    return None if satang is None else str(to_baht(satang))


def line_document(line: MatchLine) -> dict[str, Any]:
    """One result line as a JSON-ready dict."""
    return {
        "outcome": line.outcome.value,
        "lineNo": line.line_no,
        "partnerTxnId": line.partner_txn_id,
        "nationalId": line.national_id,
        "section": line.section,
        "fileMonths": _months(line.file_months),
        "fileAmount": _baht(line.file_amount_satang),
        "gatewayMonths": _months(line.gateway_months),
        "gatewayAmount": _baht(line.gateway_amount_satang),
        "paymentId": line.payment_id,
        "note": line.note,
    }


def report_document(report: SettlementReport) -> dict[str, Any]:
    """The report as one JSON-ready document (camelCase, amounts in baht as strings)."""
    record, summary = report.record, report.record.summary
    totals = [
        {"section": section}
        | {
            _camel(k.replace("satang", "amount")): _baht(v) if k.endswith("satang") else v
            for k, v in asdict(t).items()
        }
        | {"differenceAmount": _baht(t.difference_satang)}
        for section, t in sorted(summary.totals.items())
    ]
    return {
        "id": record.id,
        "partner": record.partner,
        "businessDate": str(record.business_date),
        "format": record.file_format,
        "fileName": record.file_name,
        "fileSha256": record.sha256.hex(),
        "fileBytes": record.file_bytes,
        "header": {_camel(k): v for k, v in record.header.items()},
        "importedBy": record.imported_by,
        "importedAt": record.imported_at.isoformat(),
        "replayed": report.replayed,
        "mismatches": summary.mismatches,
        "counts": {_camel(o.value): summary.counts.get(o, 0) for o in Outcome},
        "totals": totals,
        "lines": [line_document(line) for line in report.lines],
        "nextCursor": report.next_cursor,
    }
