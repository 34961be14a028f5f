"""Reading the trees xmltodict builds: child elements, simple text, attributes.

xmltodict gives an element as ``None`` (empty), a ``str`` (text only), a ``dict`` (attributes
as ``@name``, text as ``#text``, children by name) or, for a name that repeats, a ``list``.
These helpers read that shape strictly and raise ``Shape`` when it is not what the schema
wants; each caller turns ``Shape`` into its own error (envelope, payload or credential).
"""

from __future__ import annotations

from typing import Final

_TEXT: Final = "#text"
_NIL: Final = "@xsi:nil"


class Shape(Exception):
    """A parsed element is not shaped as expected; ``problem`` is a stable word for it."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


def single(value: object) -> object:
    """An element that may appear once."""
    if isinstance(value, list):
        raise Shape("repeated", "appears more than once")
    return value


def repeated(value: object) -> list[object]:
    """The occurrences of an element that may repeat."""
    return list(value) if isinstance(value, list) else [value]


def child_elements(value: object) -> dict[str, object]:
    """The child elements of an element by parsed name, attributes left out."""
    value = single(value)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Shape("text", "holds text where elements are expected")
    children: dict[str, object] = {}
    for key, child in value.items():
        if key == _TEXT:
            raise Shape("text", "holds text where elements are expected")
        if not key.startswith("@"):
            children[key] = child
    return children


def simple_text(value: object) -> str | None:
    """The text of a simple-typed element: "" when empty, None when it is xsi:nil."""
    value = single(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise Shape("invalid", "is not a simple value")
    if any(not key.startswith("@") and key != _TEXT for key in value):
        raise Shape("invalid", "holds elements where a simple value is expected")
    text = value.get(_TEXT, "")
    if value.get(_NIL) in ("true", "1"):
        if text:
            raise Shape("invalid", "is xsi:nil but not empty")
        return None
    return str(text)


def attribute(value: object, name: str) -> str | None:
    """An attribute of an element by parsed name (such as ``s11:mustUnderstand``)."""
    if isinstance(value, dict):
        found = value.get(f"@{name}")
        if isinstance(found, str):
            return found
    return None
