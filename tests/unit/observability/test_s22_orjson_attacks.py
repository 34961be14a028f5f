"""Session 22 attacks on the log lines written through orjson (``app.observability.logs``):
each test fails on the code it was written against because of the defect its docstring names,
and says what the correct behaviour is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# A value logged inside a container it can reach: its text (``default=str``) empties that
# container while the encoder is half-way through it. The same happens, without any odd
# ``__str__``, when another thread changes a dict or list that is being logged while a
# dataclass in it is written (its ``__repr__`` is Python code, so the thread may switch).
_SCRIPT = """
import logging, sys
from app.observability.logs import JsonFormatter

kind = sys.argv[1]
holder = {}

class Emptying:
    def __str__(self):
        holder["state"].clear()
        return "m"

if kind == "dict":
    state = {"a": Emptying(), "b": "b" * 100, "c": [1, 2, 3], "e": {"x": "y" * 50}}
else:
    state = [Emptying(), "b" * 100, [1, 2, 3], {"x": "y" * 50}]
holder["state"] = state
record = logging.makeLogRecord(
    {"msg": "state", "levelno": 20, "levelname": "INFO", "name": "t", "state": state}
)
print(JsonFormatter().format(record))
"""


def _format_in_a_process_of_its_own(kind: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SCRIPT), kind],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def _no_repeated_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key written twice: {keys}"
    return dict(pairs)


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_a_container_changed_while_its_line_is_written_does_not_crash_the_process(
    kind: str,
) -> None:
    """Defect: ``_encode`` hands every line to ``orjson.dumps(..., default=str)``. orjson walks
    a dict or list by borrowed references and calls ``default`` (Python code) half-way through;
    when that code, or another thread while it runs, changes the container, orjson reads freed
    memory: the process dies of a segmentation fault (the list here; every line held by the
    handler is lost with it, and the worker with them) or writes garbage (the dict here: the
    same key four times, ``{"a":"m","a":"m","a":"m","a":"m"}``). The standard library's
    encoder, used before, copies a dict's items and re-reads a list's length, and writes a
    line either way.

    Correct: the process lives and writes one line of JSON, no key in it twice, the value
    that was being written first written as its text.
    """
    done = _format_in_a_process_of_its_own(kind)
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-400:]}"
    line = json.loads(done.stdout, object_pairs_hook=_no_repeated_keys)
    state = line["state"]
    first = state[0] if kind == "list" else state["a"]
    assert first == "m"
    assert line["message"] == "state"
