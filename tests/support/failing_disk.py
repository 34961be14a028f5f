"""A disk that fails a ``stat`` (EIO) of one spool file's name, for the spool's fault tests."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest


def stat_fails(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """From here on (until ``monkeypatch`` undoes it), ``Path.stat`` of any file named
    ``name`` raises EIO, as a failing disk's would; every other stat is made as usual."""
    real = Path.stat

    def failing(self: Path, *args: object, **kwargs: object) -> os.stat_result:
        if self.name == name:
            raise OSError(errno.EIO, "Input/output error")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "stat", failing)
