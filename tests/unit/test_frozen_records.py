"""quick_init: the same record as the dataclass makes, built faster; anything it cannot build
exactly is refused when the class is defined."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import InitVar, dataclass, field

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
