"""The lock files: they satisfy pyproject.toml, pin every package with its hashes, agree with
each other, and are what make's virtualenv, the image and so CI install from."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.deploy_files import REPO

LOCK = REPO / "requirements.lock"
DEV_LOCK = REPO / "requirements-dev.lock"


@dataclass(frozen=True)
class Pin:
    version: str
    marker: str
    hashes: int


def pins(path: Path) -> dict[str, Pin]:
    """name -> its pin, from a hashed requirements file (uv pip compile's format)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
    found: dict[str, Pin] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pinned = re.fullmatch(
            r"([A-Za-z0-9._-]+)==(\S+)\s*(?:;\s*(.*?))?\s*((?:--hash=sha256:[0-9a-f]{64}\s*)+)",
            line,
        )
        assert pinned, f"{path.name}: not an exact pin with hashes: {line[:120]}"
        name, version, marker, hashes = pinned.groups()
        found[canonicalize_name(name)] = Pin(version, marker or "", hashes.count("--hash="))
    return found


def project() -> dict[str, object]:
    data: dict[str, object] = tomllib.loads((REPO / "pyproject.toml").read_text())
    return data


def requirements(group: str | None = None) -> list[Requirement]:
    table = project()["project"]
    assert isinstance(table, dict)
    listed = table["optional-dependencies"][group] if group else table["dependencies"]
    return [Requirement(text) for text in listed]


def build_requirements() -> list[Requirement]:
    system = project()["build-system"]
    assert isinstance(system, dict)
    return [Requirement(text) for text in system["requires"]]


def satisfied(requirement: Requirement, locked: dict[str, Pin], where: str) -> None:
    name = canonicalize_name(requirement.name)
    assert name in locked, f"{requirement} is not in {where}: run `make lock`"
    version = locked[name].version
    assert requirement.specifier.contains(version, prereleases=True), (
        f"{where} pins {name}=={version}, pyproject.toml asks {requirement}: run `make lock`"
    )


def test_every_line_is_an_exact_pin_with_hashes() -> None:
    for path in (LOCK, DEV_LOCK):
        locked = pins(path)
        assert len(locked) > 20, path.name
        assert all(pin.hashes >= 1 for pin in locked.values())
        assert "ssogw" not in locked, "the project itself is installed with --no-deps"


def test_the_locks_satisfy_pyproject() -> None:
    service, dev = pins(LOCK), pins(DEV_LOCK)
    for requirement in [*requirements(), *build_requirements()]:
        satisfied(requirement, service, LOCK.name)
        satisfied(requirement, dev, DEV_LOCK.name)
    for requirement in requirements("dev"):
        satisfied(requirement, dev, DEV_LOCK.name)


def test_extras_of_dependencies_are_locked_too() -> None:
    # uvicorn[standard]: its extra's packages (uvloop, httptools, ...) are in the lock as well.
    service = pins(LOCK)
    for requirement in requirements():
        for extra in requirement.extras:
            for text in importlib.metadata.requires(requirement.name) or ():
                needed = Requirement(text)
                if needed.marker and needed.marker.evaluate({"extra": extra}):
                    assert canonicalize_name(needed.name) in service, f"{requirement}: {needed}"


def test_the_image_runs_the_versions_the_tests_run() -> None:
    service, dev = pins(LOCK), pins(DEV_LOCK)
    for name, pin in service.items():
        # The markers may differ (a tool may need unconditionally what the service needs on
        # Linux only); the versions may not.
        assert name in dev, f"{name} is in {LOCK.name} only"
        assert dev[name].version == pin.version, f"{name}: {pin.version} and {dev[name].version}"


def test_this_environment_is_the_locked_one() -> None:
    """The packages pyproject names are installed at the locked versions here (an older venv
    than the lock fails; `make` reinstalls it when a lock file changes)."""
    dev = pins(DEV_LOCK)
    for requirement in [*requirements(), *requirements("dev")]:
        if requirement.marker and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{name} is not installed")
        assert installed == dev[name].version, f"{name} {installed}, locked {dev[name].version}"


def test_make_the_image_and_ci_install_from_the_locks() -> None:
    makefile = (REPO / "Makefile").read_text()
    stamp = re.search(r"^\$\(STAMP\): (.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert stamp, "the Makefile has a $(STAMP) rule"
    assert {"$(LOCK)", "$(DEV_LOCK)", "pyproject.toml"} <= set(stamp.group(1).split())
    recipe = stamp.group(2)
    assert "--require-hashes -r $(DEV_LOCK)" in recipe
    assert "--no-deps" in recipe and "-e ." in recipe
    assert re.search(r"^LOCK := requirements\.lock$", makefile, re.M)
    assert re.search(r"^DEV_LOCK := requirements-dev\.lock$", makefile, re.M)
    for target in ("run", "test", "lint", "test-fast"):
        assert re.search(rf"^{target}: \$\(STAMP\)", makefile, re.M), target
    assert "make lint" in (REPO / ".ci" / "run").read_text()
    assert "make test" in (REPO / ".ci" / "run").read_text()

    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    installs = re.findall(r"pip install ([^\n\\&]*)", dockerfile)
    assert all("--require-hashes" in args or "--no-deps" in args for args in installs), installs
