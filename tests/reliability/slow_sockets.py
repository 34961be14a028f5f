"""Many slow connections from one address, held by a process of their own so that the test's
event loop, which times everyone else's calls, is not the one busy opening them.

``python -m tests.reliability.slow_sockets PORT COUNT ADDRESS HOLD_S`` opens COUNT connections
from ADDRESS to 127.0.0.1:PORT, every other one sending the first byte of a request and the
rest nothing at all, prints one JSON line when all are open, and holds them HOLD_S seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from tests.reliability.gateway_process import REPO


def main(argv: list[str]) -> None:
    port, count, address, hold_s = int(argv[0]), int(argv[1]), argv[2], float(argv[3])
    started = time.monotonic()
    held = []
    failed = 0
    for n in range(count):
        sock = socket.socket()
        sock.settimeout(5)
        try:
            sock.bind((address, 0))
            sock.connect(("127.0.0.1", port))
            if n % 2:
                sock.send(b"P")
        except OSError:
            failed += 1  # reset by the server as it refused it: a refused one is done with
        held.append(sock)
    seconds = time.monotonic() - started
    print(json.dumps({"opened": count - failed, "seconds": seconds}), flush=True)
    time.sleep(hold_s)
    for sock in held:
        sock.close()


@contextlib.asynccontextmanager
async def slow_sockets(
    port: int, count: int, address: str, hold_s: float
) -> AsyncIterator[dict[str, Any]]:
    """Open the sockets in a child process; yields its figures once they are all open."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.reliability.slow_sockets",
        *(str(port), str(count), address, str(hold_s)),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        yield json.loads(await child.stdout.readline())
    finally:
        child.kill()
        await child.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
