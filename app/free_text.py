"""Free text as callers send it: what is trimmed off its ends, and nothing more.

XML and JSON call four characters white space: space, tab, carriage return and line feed.
Python's ``str.strip()`` takes every character Unicode calls a space, a no-break space (U+00A0)
and an ideographic space (U+3000) among them, so a value padded with one would be trimmed into
another value instead of being refused as not printable. Strip ``PADDING`` only.
"""

from __future__ import annotations

from typing import Final

#: The white space of XML and of JSON: all that is trimmed off free text.
PADDING: Final = " \t\r\n"
