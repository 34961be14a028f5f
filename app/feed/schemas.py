"""The partner feed over REST: the download's media types and headers, the export's manifest."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, Literal
from urllib.parse import quote

from pydantic import ConfigDict, Field

from app.domain.calendar import BANGKOK
from app.feed.access import FeedDownload
from app.feed.service import FeedExport
from app.rest.wire import MonthText, OutModel

FeedFormat = Literal["fixed", "csv"]
FEED_MEDIA: Final = {"fixed": "text/plain; charset=tis-620", "csv": "text/csv; charset=utf-8"}
_UNSAFE_IN_NAME: Final = re.compile(r"[^A-Za-z0-9._-]")


def feed_file_name(download: FeedDownload) -> str:
    """``ssofeed-PARTNER-s40-20261126T154000.txt``: partner, section (or all), generation time."""
    plan = download.plan
    section = "all" if plan.query.section is None else f"s{plan.query.section}"
    extension = "txt" if plan.file_format == "fixed" else "csv"
    return f"ssofeed-{plan.partner.name}-{section}-{plan.generated_at:%Y%m%dT%H%M%S}.{extension}"


def feed_headers(download: FeedDownload) -> dict[str, str]:
    """An attachment named for the export (ASCII, and exactly per RFC 6266), never cached."""
    name = feed_file_name(download)
    ascii_name = _UNSAFE_IN_NAME.sub("_", name)
    return {
        "Content-Disposition": (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
        ),
        "Cache-Control": "no-store",
    }


class FeedExportOut(OutModel):
    """The manifest of a partner's newest feed export, read from that export's audit record:
    check a downloaded file against ``sha256``, ``byteCount`` and ``rowCount``, and that
    ``requestId`` is the X-Request-ID of your download."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "layout": "SSOFEEDV01",
                    "format": "fixed",
                    "encoding": "TIS-620",
                    "partner": "cvs-demo",
                    "partnerDisplayName": "ร้านสะดวกซื้อทดสอบ",
                    "section": 40,
                    "scope": ["national_id", "title", "first_name", "last_name", "section",
                              "status", "amount_due"],
                    "rowCount": 12842,
                    "byteCount": 3288064,
                    "sha256": "9f2c7d0e5b1a4c3d8e6f7a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d",
                    "generatedAt": "2026-11-26T15:40:00+07:00",
                    "amountMonth": "2026-11",
                    "recordedAt": "2026-11-26T15:40:07+07:00",
                    "requestId": "6f1c2e0a9b8d4c3e",
                    "protocol": "rest",
                    "exportedBy": "back-office",
                }
            ]
        }
    )  # fmt: skip

    layout: str = Field(description="The layout's id, as in the fixed file's H record.")
    format: FeedFormat
    encoding: str = Field(description="TIS-620 (fixed) or UTF-8 (csv).")
    partner: str
    partner_display_name: str
    section: int | None = Field(description="39 or 40; null when the feed holds both.")
    scope: list[str] = Field(description="The fields the partner's data scope allowed.")
    row_count: int = Field(description="Persons in the file (D records, or CSV rows).")
    byte_count: int = Field(description="The file's length in bytes.")
    sha256: str = Field(description="The file's SHA-256, lowercase hex.")
    generated_at: datetime = Field(description="When the export began (Bangkok time).")
    amount_month: MonthText = Field(description="The month whose rates priced the amounts.")
    recorded_at: datetime = Field(description="When its audit record was committed: its end.")
    request_id: str = Field(description="The request id of the export.")
    protocol: str = Field(description="rest or cli.")
    exported_by: str | None = Field(description="The client, or the operator of the command.")

    @classmethod
    def of(cls, e: FeedExport) -> FeedExportOut:
        m = e.manifest
        document = m.document()
        return cls(
            layout=document["layout"], format=m.file_format, encoding=document["encoding"],
            partner=m.partner, partner_display_name=m.partner_display_name, section=m.section,
            scope=list(m.scope), row_count=m.row_count, byte_count=m.byte_count,
            sha256=m.sha256, generated_at=m.generated_at, amount_month=str(m.amount_month),
            recorded_at=e.recorded_at.astimezone(BANGKOK), request_id=e.request_id,
            protocol=e.protocol, exported_by=e.exported_by,
        )  # fmt: skip
