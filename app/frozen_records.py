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
the plain case is taken — the dataclass's own ``__init__``, every field set by it, no
``default_factory``, no ``__post_init__``, no ``InitVar`` — and anything else is refused when
the class is defined (TypeError), so a record can never silently lose part of its
construction. The new ``__init__`` is made in the class's module, as the dataclass's is, so
its annotations resolve there.

    @quick_init
    @dataclass(frozen=True, slots=True)
    class PayableMonth: ...
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from typing import Any, TypeVar

T = TypeVar("T")
_OWN = "__quick_"  # the prefix of quick_init's own names in the generated code


def quick_init(cls: type[T]) -> type[T]:
    """``cls``, a ``@dataclass(frozen=True, slots=True)``, with the faster ``__init__``."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: quick_init takes a frozen, slotted dataclass")
    original: Any = cls.__dict__.get("__init__")
    if not params.init or original is None or original.__code__.co_filename != "<string>":
        raise TypeError(f"{cls.__name__}: quick_init replaces only the dataclass's own __init__")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: quick_init does not run __post_init__")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if any(not f.init or f.default_factory is not dataclasses.MISSING for f in fields):
        raise TypeError(f"{cls.__name__}: quick_init takes fields set by __init__ alone")
    # The dataclass's own order: positional fields, then keyword-only ones. Its __init__ must
    # take exactly these (an InitVar would be one more parameter).
    positional = [f.name for f in fields if not f.kw_only]
    keyword = [f.name for f in fields if f.kw_only]
    me, *taken = inspect.signature(original).parameters  # "self", or another if a field is so named
    if taken != positional + keyword:
        raise TypeError(f"{cls.__name__}: quick_init takes no InitVar")
    if any(name.startswith(_OWN) for name in taken):
        raise TypeError(f"{cls.__name__}: a field's name begins with {_OWN!r}")
    setters = [f"{_OWN}set_{i}" for i in range(len(fields))]
    params_text = ", ".join([me, *positional, *(["*", *keyword] if keyword else [])])
    body = "".join(
        f"  {setter}({me}, {name})\n" for setter, name in zip(setters, taken, strict=True)
    )
    source = (
        f"def {_OWN}factory({', '.join(setters)}):\n"
        f" def __init__({params_text}):\n{body or '  pass'}\n"
        " return __init__\n"
    )
    # Made in the class's module, as the dataclass's is: its annotations resolve there.
    made: dict[str, Any] = {}
    exec(source, sys.modules[cls.__module__].__dict__, made)  # noqa: S102
    init = made[f"{_OWN}factory"](*(getattr(cls, name).__set__ for name in taken))
    init.__defaults__ = original.__defaults__
    init.__kwdefaults__ = original.__kwdefaults__
    init.__annotations__ = original.__annotations__
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
