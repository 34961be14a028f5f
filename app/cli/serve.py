"""`ssogw serve`: the gateway under uvicorn, draining on SIGTERM, its connections capped and
timed (``app.observability.guarded_http``); with ``--workers N`` (``SSOGW_HTTP_WORKERS``;
default: the CPUs this process may use), N worker processes share the port under a
supervisor (``app.workers``). One worker runs in this process itself, as before."""

from __future__ import annotations

import argparse
import socket
import sys
from typing import TYPE_CHECKING, Any

from app.cli.output import say
from app.settings import Settings

if TYPE_CHECKING:
    from app.workers.link import WorkerLink


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the app that ``app.main.create_app`` builds until told to stop."""
    from app.observability.logs import configure_logging

    host = args.host or settings.http_host
    port = args.port or settings.http_port
    settings.refuse_published_secret_key(host)  # before anything starts: a clear error, exit 1
    if args.worker is not None:
        configure_logging(settings.log_level, worker=int(args.worker.split("/")[0]))
        return _serve_worker(args, settings, host=host, port=port)
    configure_logging(settings.log_level)
    from app.workers.cpus import usable_cpus

    workers = args.workers or settings.http_workers or usable_cpus()
    if workers > (limit := worker_limit()):
        say(
            f"error: SSOGW_HTTP_WORKERS: at most {limit}, {MAX_WORKERS_PER_CPU} for each CPU"
            " this process may use"
        )  # as app.cli.main says a setting it refuses
        return 2
    _hand_over_spools(settings, workers=workers)
    if workers == 1:
        _serve(settings, host=host, port=port)
        return 0
    return _serve_group(settings, host=host, port=port, workers=workers)


def _serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    sockets: list[socket.socket] | None = None,
    link: WorkerLink | None = None,
) -> None:
    """Serve in this process: alone, or as worker ``link`` of a group on ``sockets``."""
    import uvicorn

    from app.main import create_app, render_cut
    from app.observability.connection_guard import ConnectionGuard, ConnectionLimits
    from app.observability.guarded_http import guarded_protocol
    from app.observability.serving import DrainingServer, allow_open_files, tune_gc

    app = create_app(settings, worker=link)
    gateway = app.state.gateway
    guard = ConnectionGuard(
        ConnectionLimits(
            max_connections=settings.http_max_connections,
            max_per_address=settings.http_max_connections_per_address,
            header_timeout_s=settings.http_header_timeout_s,
            body_timeout_s=settings.http_body_timeout_s,
            body_min_rate=settings.http_body_min_rate,
            max_head_bytes=4 * settings.max_header_bytes,
            log_interval_s=settings.http_cut_log_interval_s,
        ),
        exempt=gateway.admission.is_trusted_proxy,  # the ingress carries many callers
        events=gateway.metrics,
    )
    allow_open_files(settings.http_max_connections)
    tune_gc()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        workers=1,
        http=guarded_protocol(guard, answer=render_cut),
        timeout_keep_alive=settings.http_keepalive_timeout_s,
        proxy_headers=False,  # the service decides which forwarded addresses to believe
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        log_config=None,
        access_log=False,
        server_header=False,
    )
    server = DrainingServer(
        config, drain_s=settings.shutdown_drain_s, begin_drain=app.state.begin_drain
    )
    if link is not None:  # an orphan stops at once: its listener closes, its calls finish
        link.when_orphaned(lambda: setattr(server, "should_exit", True))
    server.run(sockets=sockets)


def _serve_worker(args: argparse.Namespace, settings: Settings, *, host: str, port: int) -> int:
    """Worker ``--worker K/N`` of a group, on the descriptors its supervisor handed over."""
    from app.workers.link import WorkerLink
    from app.workers.shares import worker_settings

    index, workers = (int(part) for part in args.worker.split("/"))
    listener_fd, line_fd = (int(part) for part in args.worker_fds.split(","))
    link = WorkerLink(index=index, workers=workers, fd=line_fd)
    try:
        _serve(
            worker_settings(settings, index=index, workers=workers),
            host=host,
            port=port,
            sockets=[socket.socket(fileno=listener_fd)],
            link=link,
        )
    except KeyboardInterrupt:  # the supervisor's "stop now" (a second signal), after uvicorn
        return 130
    return 0


def _serve_group(settings: Settings, *, host: str, port: int, workers: int) -> int:
    """``workers`` worker processes on one port, under a supervisor in this process."""
    import asyncio
    import logging

    from app.workers.listeners import bind_listeners
    from app.workers.supervisor import Supervisor

    listeners = bind_listeners(host, port, workers)  # OSError if the port is taken: exit 1
    port = listeners[0].getsockname()[1]

    def command(index: int, listener_fd: int, line_fd: int) -> list[str]:
        return [
            sys.executable, "-m", "app.cli.main", "serve", "--host", host, "--port", str(port),
            "--worker", f"{index}/{workers}", "--worker-fds", f"{listener_fd},{line_fd}",
        ]  # fmt: skip

    logging.getLogger("ssogw.workers").info("serving on %s:%d with %d workers", host, port, workers)
    supervisor = Supervisor(
        listeners=listeners,
        command=command,
        # The drain, the calls' grace, then the audit flush and the last seal (each bounded).
        stop_timeout_s=settings.shutdown_drain_s + settings.shutdown_grace_s + 15,
    )
    return asyncio.run(supervisor.run())


def _hand_over_spools(settings: Settings, *, workers: int) -> None:
    """Records spooled by workers a server with more workers had go to worker 0's spool."""
    import logging

    from app.audit.spool.files import hand_over
    from app.workers.shares import former_workers

    base, log = settings.spool_dir(), logging.getLogger("ssogw.workers")
    for former in former_workers(base, settings.instance_id, workers=workers):
        try:
            moved = hand_over(base, source=former, target=settings.instance_id)
        except OSError as exc:  # nothing moved yet, or the rest not: kept, tried next start
            log.error(
                "the audit spool of former worker %s could not go to %s: %s; it stays where it"
                " is, and is handed over at the next start", former, settings.instance_id,
                f"{exc.filename}: {exc.strerror}" if exc.filename else exc,
            )  # fmt: skip
            continue
        if moved:
            log.warning(
                "the audit spool of former worker %s (%d files) goes to %s",
                former, moved, settings.instance_id,
            )  # fmt: skip


#: Workers a CPU at most: more only compete for it (and each is an interpreter and a pool).
MAX_WORKERS_PER_CPU = 4


def worker_limit() -> int:
    """The most workers ``ssogw serve`` starts here."""
    from app.workers.cpus import usable_cpus

    return MAX_WORKERS_PER_CPU * usable_cpus()


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    if value > (limit := worker_limit()):
        raise argparse.ArgumentTypeError(
            f"at most {limit}, {MAX_WORKERS_PER_CPU} for each CPU this process may use"
        )
    return value


def register(subparsers: Any) -> None:
    """Add `serve` to the `ssogw` parser."""
    serve = subparsers.add_parser("serve", help="serve the gateway (uvicorn, N workers)")
    serve.add_argument("--host", help="listen address (default SSOGW_HTTP_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default SSOGW_HTTP_PORT, 8000)")
    serve.add_argument(
        "--workers",
        type=_workers,
        help="worker processes sharing the port (default SSOGW_HTTP_WORKERS, else the CPUs"
        " this process may use: its affinity and its cgroup's CPU quota)",
    )
    # The supervisor's hand-over to a worker it starts (app.workers.supervisor); not for people.
    serve.add_argument("--worker", help=argparse.SUPPRESS)
    serve.add_argument("--worker-fds", help=argparse.SUPPRESS)
    serve.set_defaults(handler=cmd_serve)
