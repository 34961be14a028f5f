"""quick_init: the same record as the dataclass makes, built faster; anything it cannot build
exactly is refused when the class is defined."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import typing
from dataclasses import InitVar, dataclass, field
from datetime import date
from typing import ClassVar

import pytest

from app.frozen_records import quick_init


@dataclass(frozen=True, slots=True)
class Plain:
    name: str
    amount: int = 5
    note: str | None = None
    kind: str = field(default="x", kw_only=True)


@quick_init
@dataclass(frozen=True, slots=True)
class Quick:
    name: str
    amount: int = 5
    note: str | None = None
    kind: str = field(default="x", kw_only=True)


@quick_init
@dataclass(frozen=True, order=True, slots=True)
class Ordered:
    year: int
    month: int


def test_it_takes_the_same_arguments_with_the_same_defaults() -> None:
    assert str(inspect.signature(Quick.__init__)) == str(inspect.signature(Plain.__init__))
    assert Quick("a") == Quick("a", 5, None, kind="x")
    made = Quick("a", 7, kind="y")
    assert (made.name, made.amount, made.note, made.kind) == ("a", 7, None, "y")
    with pytest.raises(TypeError):
        Quick("a", 7, None, "y")  # type: ignore[misc]  # kind is keyword-only
    with pytest.raises(TypeError):
        Quick()  # type: ignore[call-arg]


def test_the_record_stays_frozen_and_a_value() -> None:
    made = Ordered(2026, 12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.year = 2027  # type: ignore[misc]
    assert made == Ordered(2026, 12) and hash(made) == hash(Ordered(2026, 12))
    assert Ordered(2026, 11) < made and repr(made) == "Ordered(year=2026, month=12)"
    assert dataclasses.replace(made, month=1) == Ordered(2026, 1)
    assert pickle.loads(pickle.dumps(made)) == made and copy.copy(made) == made


@pytest.mark.parametrize(
    "body",
    [
        {"__annotations__": {"items": "list[int]"}, "items": field(default_factory=list)},
        {"__annotations__": {"a": "int"}, "__post_init__": lambda self: None},
        {"__annotations__": {"a": "int", "b": "InitVar[int]"}, "b": InitVar(int)},
        {"__annotations__": {"a": "int", "b": "int"}, "b": field(default=0, init=False)},
    ],
    ids=["default_factory", "post_init", "init_var", "field_not_in_init"],
)
def test_what_it_cannot_build_exactly_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(TypeError, match="quick_init"):
        quick_init(dataclass(frozen=True, slots=True)(type("R", (), dict(body))))


def test_only_frozen_slotted_dataclasses() -> None:
    with pytest.raises(TypeError, match="frozen, slotted"):
        quick_init(dataclass(slots=True)(type("M", (), {"__annotations__": {"a": "int"}})))
    with pytest.raises(TypeError, match="frozen, slotted"):
        quick_init(dataclass(frozen=True)(type("S", (), {"__annotations__": {"a": "int"}})))
    with pytest.raises(TypeError, match="frozen, slotted"):
        quick_init(type("N", (), {}))


# The attacker's review of quick_init (session 8): what the plain dataclass does, it does.
def test_a_record_with_its_own_init_is_refused_not_silently_rebuilt() -> None:
    """@dataclass keeps an __init__ written in the class (it only adds one when there is none);
    quick_init replaces it with a field-by-field one: the record's own construction is lost
    without a word. The docstring promises such a class is refused (TypeError)."""

    @dataclass_frozen_slots
    class Money:
        satang: int

        def __init__(self, baht: int) -> None:
            object.__setattr__(self, "satang", baht * 100)

    assert Money(5).satang == 500  # the dataclass as written
    try:
        quick_init(Money)
    except TypeError:
        return  # refused: fine
    assert Money(5).satang == 500, f"rebuilt silently: Money(5) == {Money(5)!r}"


def test_init_false_on_the_decorator_is_refused() -> None:
    @dataclasses.dataclass(frozen=True, slots=True, init=False)
    class Custom:
        a: int

        def __init__(self) -> None:
            object.__setattr__(self, "a", 42)

    with pytest.raises(TypeError, match="quick_init"):
        quick_init(Custom)


def dataclass_frozen_slots(cls: type) -> type:
    return dataclasses.dataclass(frozen=True, slots=True)(cls)


@dataclasses.dataclass(frozen=True, slots=True)
class PlainDated:
    on: date
    n: int = 1


@quick_init
@dataclasses.dataclass(frozen=True, slots=True)
class QuickDated:
    on: date
    n: int = 1


def test_the_init_s_annotations_resolve_as_the_dataclass_s_do() -> None:
    """The generated __init__ lives in the class's module globals; quick_init's in a dict of
    setters, so its (string) annotations no longer resolve: typing.get_type_hints and
    inspect.signature(eval_str=True) raise NameError."""
    assert typing.get_type_hints(PlainDated.__init__)["on"] is date
    assert typing.get_type_hints(QuickDated.__init__)["on"] is date
    assert str(inspect.signature(QuickDated, eval_str=True)) == str(
        inspect.signature(PlainDated, eval_str=True)
    )


def test_a_classvar_is_not_refused_as_an_initvar() -> None:
    """A ClassVar is no field and no InitVar: the plain case. quick_init counts it among
    __dataclass_fields__ and refuses the class, saying 'takes no InitVar'."""

    @dataclass_frozen_slots
    class Limited:
        a: int
        LIMIT: ClassVar[int] = 3

    assert quick_init(Limited)(1).a == 1


def test_field_names_do_not_clash_with_the_setters() -> None:
    """The setters are globals named _set_<field>; a field named _set_<another field> shadows
    one of them inside __init__ (the plain dataclass takes it)."""

    @dataclass_frozen_slots
    class Odd:
        a: int
        _set_a: int = 0

    assert Odd(1, 2) == Odd(a=1, _set_a=2)
    quick = quick_init(Odd)
    try:
        made = quick(1, 2)
    except TypeError as exc:
        pytest.fail(f"quick_init's __init__ breaks: {exc}")
    assert (made.a, made._set_a) == (1, 2)


def test_a_field_named_self_is_taken_as_the_dataclass_takes_it() -> None:
    @dataclass_frozen_slots
    class Odd:
        self: int
        other: int = 2

    plain_signature = str(inspect.signature(Odd))
    quick = quick_init(Odd)
    assert str(inspect.signature(quick)) == plain_signature
    assert quick(1) == quick(self=1, other=2)
