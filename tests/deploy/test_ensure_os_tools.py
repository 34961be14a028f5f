"""scripts/ensure-os-tools, run against stand-in `id` and `apt-get` in an empty PATH."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.deploy.deploy_files import REPO

SCRIPT = REPO / "scripts" / "ensure-os-tools"
BASH = shutil.which("bash") or "/bin/bash"
TOOLS = ("promtool", "prometheus", "wrk", "chromium", "wsimport", "javac")


def fake_machine(tmp_path: Path, *, uid: int) -> tuple[Path, Path]:
    """A bin directory with only `id` (saying ``uid``) and an `apt-get` that logs its calls
    and, on install, puts the tools in place."""
    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_dir.mkdir()
    (bin_dir / "id").write_text(f"#!{BASH}\necho {uid}\n")
    (bin_dir / "apt-get").write_text(
        f"#!{BASH}\n"
        f'echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> {log}\n'
        'if [[ "$1" == install ]]; then\n'
        + "".join(f"  /bin/ln -s /bin/true {bin_dir}/{tool}\n" for tool in TOOLS)
        + "fi\n"
    )
    for tool in ("id", "apt-get"):
        (bin_dir / tool).chmod(0o755)
    return bin_dir, log


def ensure(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(SCRIPT)],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_as_root_installs_once_then_does_nothing(tmp_path: Path) -> None:
    bin_dir, log = fake_machine(tmp_path, uid=0)
    first = ensure(bin_dir)
    assert first.returncode == 0, first.stderr
    assert log.read_text().splitlines() == [
        "DEBIAN_FRONTEND=noninteractive update -qq",
        "DEBIAN_FRONTEND=noninteractive install -y -qq --no-install-recommends"
        " prometheus wrk chromium fonts-thai-tlwg jaxws default-jdk-headless",
    ]
    again = ensure(bin_dir)
    assert again.returncode == 0 and again.stdout == again.stderr == ""
    assert len(log.read_text().splitlines()) == 2, "nothing installed twice"


def test_as_another_user_warns_and_lets_the_tests_skip(tmp_path: Path) -> None:
    bin_dir, log = fake_machine(tmp_path, uid=1000)
    result = ensure(bin_dir)
    assert result.returncode == 0
    assert "warning" in result.stderr and all(tool in result.stderr for tool in TOOLS)
    assert not log.exists(), "no install attempted without root"


def test_is_executable() -> None:
    assert SCRIPT.stat().st_mode & 0o111
