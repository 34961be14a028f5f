"""A REST request body's JSON, read strictly: numbers as ``Decimal``, no name twice, no NaN."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.requests import Request


class _NotJson(ValueError):
    """What JSON does not allow, met while a body is read (``DecimalJsonRequest``)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _NotJson(f"the name {name!r} appears twice in one object")
            seen.add(name)
    return obj


def _constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON value")


class DecimalJsonRequest(Request):
    """A request whose JSON numbers are read as ``Decimal``: baht are never floats. A name
    given twice in one object is refused, not read as its last value: a proxy or log that
    reads the first would see another request than the gateway; so are NaN and Infinity,
    which JSON does not have. Either is the body's ``json_invalid``, saying which."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(
                    body, parse_float=Decimal, parse_constant=_constant, object_pairs_hook=_object
                )
            except _NotJson as refused:
                text = body.decode("utf-8", "replace")
                raise json.JSONDecodeError(str(refused), text, 0) from None
        return self._json
