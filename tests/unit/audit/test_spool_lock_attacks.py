"""Attacks on the spool's lock checked at every write (``still_held``): what /readyz and the
gauges ask of it while the disk fails, and what a directory removed while the instance ran
and claimed by another instance meanwhile may be done to."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from uuid import uuid4

import pytest

from app.audit.spool.files import AuditSpool
from app.audit.spool.lock import LOCK_FILE
from tests.support.audit_rows import spooled_row


def test_readiness_asked_while_the_lock_file_cannot_be_stat_ed_says_not_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``writable()`` is asked by /readyz, and by every /metrics scrape (ssogw_ready), while the
    primary is down. It now stats the lock file: a stat that fails otherwise than ENOENT (EIO
    on a failing disk, EACCES on a directory whose mode an operator changed) escaped it, and
    both endpoints answered 500 instead of "not ready" (the rest of the spool's checks answer
    False, and its gauge its last size, on the same failing disk)."""
    spool = AuditSpool(tmp_path, instance_id="w1")
    spool.claim()
    try:
        spool.append([(uuid4(), spooled_row(1))])
        real = os.stat

        def failing(path: object, *args: object, **kwargs: object) -> os.stat_result:
            if str(path).endswith(LOCK_FILE):
                raise OSError(errno.EIO, "Input/output error")
            return real(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "stat", failing)
        assert spool.writable() is False
    finally:
        spool.release()
