"""npm packages a test needs, installed by ``npm ci`` from the lock beside it when what
``node_modules`` holds is not what the lock names.

One install at a time for each folder, across processes: ``npm ci`` first removes
``node_modules``, so two test workers installing into one folder at once (a fresh checkout
under ``make test``) could each find it gone under the other.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def _installed(folder: Path) -> bool:
    """Whether ``folder``'s node_modules holds exactly what its package-lock.json names."""
    hidden = folder / "node_modules" / ".package-lock.json"
    if not hidden.exists():
        return False
    locked = json.loads((folder / "package-lock.json").read_text())["packages"]
    present = json.loads(hidden.read_text())["packages"]
    return bool(present == {path: entry for path, entry in locked.items() if path})


def npm_ci(folder: Path, *flags: str) -> str | None:
    """Install ``folder``'s locked packages unless they are there: None when they are, else
    why they are not (no npm, or npm's own error)."""
    # Named for the user too: another user's file of the same name could not be opened.
    lock = Path(tempfile.gettempdir()) / f"ssogw-npm-{os.getuid()}-{_digest(folder)}.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when the file is closed
        if _installed(folder):
            return None
        npm = shutil.which("npm")
        if npm is None:
            return "npm is not installed"
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", *flags],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return None if done.returncode == 0 else done.stderr.strip()[-500:]


def _digest(folder: Path) -> str:
    return hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
