"""The access report as a printable page: the Jinja2 template ``templates/access_report.html``.

An A4 page in Thai with English below, the person's name and masked ID on top. The API and the
command line render it with the same function, so both give the same document.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Final

import jinja2

from app.access_report.service import AccessReport

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def access_report_html(report: AccessReport) -> str:
    """The printable report: Thai with English below, A4, name and masked ID on top."""
    return _templates().get_template("access_report.html").render(report=report)
