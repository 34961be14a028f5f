"""A faster ``__init__`` for the frozen, slotted dataclasses an inquiry builds on every call.

A frozen dataclass's generated ``__init__`` stores each field through
``object.__setattr__(self, name, value)``: a global lookup, an attribute lookup and a call per
field. On this project's 2-core machine that is 4.4 µs for a record of 24 fields, against
0.4 µs for a mutable one, and the records an inquiry builds took 7.5 % of its CPU (py-spy,
bench/RESULTS.md, session 8). ``quick_init`` gives such a class an ``__init__`` of the same
signature and defaults that stores each field through its slot's descriptor
(``Record.field.__set__``, bound once): 1.6 µs for the same record.

Nothing else changes: assignment after construction still raises ``FrozenInstanceError``;
equality, hashing, ordering, ``repr``, ``replace`` and pickling are the dataclass's own. Only
the plain case is taken — every field set by ``__init__``, no ``default_factory``, no
``__post_init__`` — and anything else is refused when the class is defined (TypeError), so a
record can never silently lose part of its construction.

    @quick_init
    @dataclass(frozen=True, slots=True)
    class PayableMonth: ...
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """``cls``, a ``@dataclass(frozen=True, slots=True)``, with the faster ``__init__``."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: quick_init takes a frozen, slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: quick_init does not run __post_init__")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if len(fields) != len(cls.__dataclass_fields__):  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__}: quick_init takes no InitVar")
    if any(not f.init or f.default_factory is not dataclasses.MISSING for f in fields):
        raise TypeError(f"{cls.__name__}: quick_init takes fields set by __init__ alone")
    # The dataclass's own order: positional fields, then keyword-only ones; their defaults
    # are carried over from the generated __init__ unchanged.
    positional = [f.name for f in fields if not f.kw_only]
    keyword = [f.name for f in fields if f.kw_only]
    params_text = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    body = "".join(f"    _set_{name}(self, {name})\n" for name in positional + keyword)
    scope: dict[str, Any] = {f"_set_{f.name}": getattr(cls, f.name).__set__ for f in fields}
    exec(f"def __init__({params_text}):\n{body or '    pass'}\n", scope)  # noqa: S102
    original: Any = cls.__init__
    init = scope["__init__"]
    init.__defaults__ = original.__defaults__
    init.__kwdefaults__ = original.__kwdefaults__
    init.__annotations__ = original.__annotations__
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
