"""The listening sockets of a worker group: one per worker on the same address and port
(``SO_REUSEPORT``), made by the supervisor before any worker starts.

With one socket per worker the kernel spreads new connections evenly over the workers (by a
hash of their addresses and ports). One shared socket would not: a worker's event loop takes
every connection waiting when it wakes, so the 64 connections a load balancer or a benchmark
opens at once could all land on one worker while the other idles.

The supervisor keeps its copy of each socket while the group runs, so connections that arrive
while a worker restarts wait in that socket's backlog for its successor instead of being
refused. ``SO_REUSEPORT`` would let another process of the same user listen on the port too
and take a share of the connections: before binding, the port is checked with a plain socket,
which cannot bind where anyone listens, so a second server on the same port fails as it would
with one worker ("address already in use").
"""

from __future__ import annotations

import socket

#: The kernel's accept queue per socket (uvicorn's default).
BACKLOG = 2048


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _socket(host: str, *, share: bool) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if share:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        sock.close()
        raise
    return sock


def bind_listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on ``host:port`` (``port`` 0: one free port for all);
    OSError if the port is taken."""
    probe = _socket(host, share=False)
    try:
        probe.bind((host.strip("[]"), port))  # EADDRINUSE if anyone listens there
        port = probe.getsockname()[1]
    finally:
        probe.close()
    listeners: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = _socket(host, share=True)
            listeners.append(sock)
            sock.bind((host.strip("[]"), port))
            sock.listen(BACKLOG)  # handed to its worker as an inherited descriptor
    except OSError:
        for sock in listeners:
            sock.close()
        raise
    return listeners
