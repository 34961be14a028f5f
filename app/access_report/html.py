"""The access report as a printable page: the Jinja2 template ``templates/access_report.html``.

An A4 page in Thai with English below, the person's name and masked ID on top. The API and the
command line render it with the same function, so both give the same document.

Every value is escaped (autoescape) and stripped of its power to reorder the page: Unicode
bidirectional overrides, embeddings, isolates and marks (U+202A–U+202E, U+2066–U+2069,
U+200E, U+200F, U+061C) in a value would make the text around them read backwards, so that a
name or a partner's words could disguise what the report says; each becomes U+FFFD, visibly.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Final

import jinja2
from markupsafe import Markup

from app.access_report.service import AccessReport

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
BIDI_CONTROLS: Final = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def neutralise_bidi(value: object) -> object:
    """``value`` with every bidirectional control character replaced by U+FFFD (text only)."""
    if isinstance(value, Markup):  # escaped already (a filter's result): taking characters
        return Markup(BIDI_CONTROLS.sub("\ufffd", str(value)))  # noqa: S704 out adds no markup
    if isinstance(value, str):
        return BIDI_CONTROLS.sub("\ufffd", value)
    return value


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=neutralise_bidi,  # every {{ value }} of the template passes here
    )


def access_report_html(report: AccessReport) -> str:
    """The printable report: Thai with English below, A4, name and masked ID on top."""
    return _templates().get_template("access_report.html").render(report=report)
