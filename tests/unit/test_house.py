"""The house as a newcomer sees it: the README's map names every package under app/, and the
limits that keep modules findable hold (at most 15 modules a folder, 400 lines a module)."""

from __future__ import annotations

import re
from pathlib import Path

import app

APP = Path(app.__file__).parent
README = APP.parent / "README.md"


def packages() -> set[str]:
    return {p.parent.name for p in APP.glob("*/__init__.py")}


def test_the_readme_maps_every_package_and_nothing_else() -> None:
    mapped = set(re.findall(r"^\| `app/([a-z_]+)/` \|", README.read_text(), re.M))
    assert mapped == packages(), (
        f"missing from the README: {sorted(packages() - mapped)}; "
        f"no longer in app/: {sorted(mapped - packages())}"
    )


def test_every_package_says_what_it_holds() -> None:
    for name in packages():
        doc = (APP / name / "__init__.py").read_text().strip()
        assert doc.startswith('"""') and len(doc) > len(name) + 20, f"app/{name}: no docstring"


def test_no_folder_holds_more_than_15_modules() -> None:
    crowded = {
        str(folder.relative_to(APP.parent)): n
        for folder in [APP, *APP.rglob("*/")]
        if "__pycache__" not in folder.parts and (n := len(list(folder.glob("*.py")))) > 15
    }
    assert not crowded, crowded


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(APP.parent)): n
        for path in APP.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert not long, long
