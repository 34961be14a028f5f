"""The unprivileged OS user PostgreSQL runs as, made when missing (``server_user``): two
processes making it at once (two test workers, each starting its own pair on a fresh machine)
both get it, though only one of them made it."""

from __future__ import annotations

import pwd
import subprocess
from typing import Any

import pytest

from app.db import pg_binaries


def test_a_user_made_meanwhile_by_another_process_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []
    root = pwd.getpwnam("root")

    def lookup(name: str) -> pwd.struct_passwd:
        if not made:
            raise KeyError(name)
        return root

    def useradd(command: list[str], **_: Any) -> None:
        made.append("by the other worker")  # it won the race: this one's useradd fails
        raise subprocess.CalledProcessError(9, command, stderr=b"user already exists")

    monkeypatch.setattr(pg_binaries.os, "geteuid", lambda: 0)
    monkeypatch.setattr(pg_binaries.pwd, "getpwnam", lookup)
    monkeypatch.setattr(pg_binaries.subprocess, "run", useradd)
    assert pg_binaries.server_user().uid == root.pw_uid


def test_a_user_that_could_not_be_made_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(name: str) -> pwd.struct_passwd:
        raise KeyError(name)

    def useradd(command: list[str], **_: Any) -> None:
        raise subprocess.CalledProcessError(1, command, stderr=b"cannot lock /etc/passwd")

    monkeypatch.setattr(pg_binaries.os, "geteuid", lambda: 0)
    monkeypatch.setattr(pg_binaries.pwd, "getpwnam", lookup)
    monkeypatch.setattr(pg_binaries.subprocess, "run", useradd)
    monkeypatch.setattr(pg_binaries, "USER_APPEARS_WITHIN_S", 0.2)  # no one is making it
    with pytest.raises(subprocess.CalledProcessError):
        pg_binaries.server_user()
