"""The domain imports only the standard library, app.errors, app.frozen_records (a faster
constructor for frozen records, itself standard library only) and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import app.domain

DOMAIN_DIR = Path(app.domain.__file__).parent
MODULES = sorted(DOMAIN_DIR.rglob("*.py"))


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports"
            assert node.module is not None
            names.append(node.module)
    return names


def allowed(module: str) -> bool:
    top = module.split(".")[0]
    if top == "app":
        return module in ("app.errors", "app.frozen_records", "app.domain") or module.startswith(
            "app.domain."
        )
    return top == "__future__" or top in sys.stdlib_module_names


def test_domain_has_modules() -> None:
    assert {path.name for path in MODULES} >= {"national_id.py", "section39.py", "rates.py"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_imports_are_pure(path: Path) -> None:
    impure = [name for name in imported_modules(path) if not allowed(name)]
    assert impure == [], f"{path.name} imports {impure}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_clock_no_float_money_no_async(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    for forbidden in ("datetime.now", "date.today", ".today()", "time.time(", "async def"):
        assert forbidden not in source, f"{path.name} uses {forbidden}"
    tree = ast.parse(source)
    floats = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, float)
    ]
    assert floats == [], f"{path.name} has float literals on lines {floats}"


def test_the_record_helper_is_pure_itself() -> None:
    helper = DOMAIN_DIR.parent / "frozen_records.py"
    impure = [name for name in imported_modules(helper) if not allowed(name)]
    assert impure == [], f"frozen_records.py imports {impure}"


@pytest.mark.parametrize(
    ("module", "ok"),
    [
        ("datetime", True),
        ("zoneinfo", True),
        ("app.errors", True),
        ("app.frozen_records", True),
        ("app.domain.months", True),
        ("app.db.pools", False),
        ("app.settings", False),
        ("app.counter.records", False),
        ("pydantic", False),
        ("asyncpg", False),
    ],
)
def test_the_purity_rule_itself(module: str, ok: bool) -> None:
    assert allowed(module) is ok
