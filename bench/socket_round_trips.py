"""What does the transport cost a round trip? One statement, over TCP on 127.0.0.1 and over a
Unix socket, to the same PostgreSQL server, alternated in blocks; for each block the client's
CPU a statement (and the kernel's part of it), the server backend's and the wall time.

The bench pair listens on TCP only (``app.db.server_config``), so this wants a throwaway
server with both (as the OS user that runs the bench pair; ``--port`` any free one)::

    su ssogw-pg -s /bin/bash -c "/usr/lib/postgresql/15/bin/initdb -D /tmp/pgx/data -A trust \\
        -U postgres && /usr/lib/postgresql/15/bin/pg_ctl -D /tmp/pgx/data -l /tmp/pgx/log \\
        -o '-p 55432 -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp/pgx' start"
    .venv/bin/python -m bench.socket_round_trips --port 55432 --socket-dir /tmp/pgx

Session 29's figures are in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import asyncpg
import uvloop

_TICK = os.sysconf("SC_CLK_TCK")


def _client() -> tuple[float, float]:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime, used.ru_stime


def _backend(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


async def _block(conn: asyncpg.Connection, pid: int, n: int) -> tuple[float, ...]:
    cpu0, sys0 = _client()
    backend0, wall0 = _backend(pid), time.perf_counter()
    for i in range(n):
        await conn.fetchval("SELECT $1::int", i)
    cpu1, sys1 = _client()
    backend1, wall1 = _backend(pid), time.perf_counter()
    return tuple(
        1e6 * v / n for v in (cpu1 - cpu0, sys1 - sys0, backend1 - backend0, wall1 - wall0)
    )


async def _main(args: argparse.Namespace) -> None:
    ways = {
        "tcp": await asyncpg.connect(host="127.0.0.1", port=args.port, user=args.user),
        "unix": await asyncpg.connect(host=args.socket_dir, port=args.port, user=args.user),
    }
    pids = {name: await conn.fetchval("SELECT pg_backend_pid()") for name, conn in ways.items()}
    found: dict[str, list[tuple[float, ...]]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, conn in ways.items():
            found[name].append(await _block(conn, pids[name], args.block))
    print(f"{args.rounds} blocks of {args.block} statements each way, medians (µs a statement):")
    for name, blocks in found.items():
        client, kernel, backend, wall = (
            statistics.median(column) for column in zip(*blocks, strict=True)
        )
        print(
            f"  {name:>4}: client {client:.1f} (kernel {kernel:.1f}), backend {backend:.1f},"
            f" wall {wall:.1f}; client by block {', '.join(f'{b[0]:.0f}' for b in blocks)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--socket-dir", required=True)
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--block", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=6)
    uvloop.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
