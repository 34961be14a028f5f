"""The dict tree of an XML document, built from expat's events as the document is parsed.

The tree has exactly the shape ``xmltodict.parse(data, process_namespaces=True,
namespaces=READ_PREFIXES)`` gives (``xml_tree.py`` reads it): an element is ``None`` when
empty, its stripped text when it has only text, else a dict of ``@attribute`` values,
``#text`` and child elements by parsed name, a list for a name that repeats; a namespace
declared on an element appears as its ``@xmlns`` dict. Names are ``prefix:local`` under the
fixed prefixes of ``namespaces.py``, ``uri:local`` for other namespaces.

Building it from the events of the guarding parser (``xml_guard.BodyGuard``) means a request
body is parsed once, not once to guard it and again to read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from app.soap.namespaces import READ_PREFIXES

#: The separator the guarding parser puts between a namespace URI and a local name.
SEPARATOR: Final = " "
_CDATA: Final = "#text"


def _push(item: dict[str, Any] | None, key: str, data: Any) -> dict[str, Any]:
    if item is None:
        item = {}
    if key in item:
        value = item[key]
        if isinstance(value, list):
            value.append(data)
        else:
            item[key] = [value, data]
    else:
        item[key] = data
    return item


class DictBuilder:
    """expat handlers that build the document's dict tree.

    ``separator`` is the parser's namespace separator: names arrive as ``uri<sep>local``.
    """

    __slots__ = ("_data", "_declared", "_item", "_names", "_prefixes", "_separator", "_stack")

    def __init__(
        self, separator: str = SEPARATOR, prefixes: Mapping[str, str] = READ_PREFIXES
    ) -> None:
        self._separator = separator
        self._prefixes = prefixes
        self._names: dict[str, str] = {}  # expat name -> parsed name, for this document
        self._declared: dict[str, str] = {}
        self._stack: list[tuple[dict[str, Any] | None, list[str]]] = []
        self._item: dict[str, Any] | None = None
        self._data: list[str] = []

    @property
    def tree(self) -> dict[str, Any] | None:
        """``{root name: root element}`` once the root element has ended."""
        return self._item

    def _name(self, full_name: str) -> str:
        name = self._names.get(full_name)
        if name is None:
            namespace, sep, local = full_name.rpartition(self._separator)
            if not sep:
                name = full_name
            else:
                short = self._prefixes.get(namespace, namespace)
                name = f"{short}:{local}" if short else local
            self._names[full_name] = name
        return name

    def namespace_declared(self, prefix: str | None, uri: str) -> None:
        self._declared[prefix or ""] = uri

    def start(self, full_name: str, attributes: dict[str, Any]) -> None:
        if self._declared:
            attributes = attributes or {}
            attributes["xmlns"] = self._declared
            self._declared = {}
        self._stack.append((self._item, self._data))
        self._item = (
            {"@" + self._name(key): value for key, value in attributes.items()}
            if attributes
            else None
        )
        self._data = []

    def end(self, full_name: str) -> None:
        data: str | None = "".join(self._data) if self._data else None
        item = self._item
        self._item, self._data = self._stack.pop()
        if data:
            data = data.strip() or None
        name = self._name(full_name)
        if item is not None:
            if data:
                _push(item, _CDATA, data)
            self._item = _push(self._item, name, item)
        else:
            self._item = _push(self._item, name, data)

    def characters(self, data: str) -> None:
        self._data.append(data)
