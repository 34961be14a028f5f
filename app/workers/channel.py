"""The line between the supervisor and one worker: a socket pair, carrying frames.

A frame is one byte of kind, four of payload length (big-endian) and the payload. Each side
writes a frame with one ``write`` call, so frames never interleave; each side's reader task
dispatches by kind:

==== ====================== ===============================================================
kind from                   means
==== ====================== ===============================================================
R    worker                 started: its app is up and it serves
M    worker                 "the group's exposition, please" (a scrape of /metrics)
m    supervisor             the group's exposition (the answer to M)
x    supervisor             no exposition (the payload says why)
E    supervisor             "your own exposition, please"
e    worker                 its own exposition (the answer to E)
==== ====================== ===============================================================

End of file on the line means the other side is gone: for the supervisor, a worker that
exited; for a worker, a supervisor that died without stopping it.
"""

from __future__ import annotations

import asyncio
import struct

_HEADER = struct.Struct(">cI")

READY = b"R"
GROUP_ASKED = b"M"
GROUP_ANSWER = b"m"
GROUP_FAILED = b"x"
OWN_ASKED = b"E"
OWN_ANSWER = b"e"


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    """One frame, ready to write."""
    return _HEADER.pack(kind, len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """The next frame (kind, payload), or None at end of file."""
    try:
        kind, length = _HEADER.unpack(await reader.readexactly(_HEADER.size))
        return kind, await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
