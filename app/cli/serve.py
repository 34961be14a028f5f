"""`ssogw serve`: the gateway under uvicorn, one worker, draining on SIGTERM, its connections
capped and timed (``app.observability.guarded_http``)."""

from __future__ import annotations

import argparse
from typing import Any

from app.settings import Settings


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the app that ``app.main.create_app`` builds until told to stop."""
    import uvicorn

    from app.main import create_app, render_cut
    from app.observability.connection_guard import ConnectionGuard, ConnectionLimits
    from app.observability.guarded_http import guarded_protocol
    from app.observability.logs import configure_logging
    from app.observability.serving import DrainingServer, allow_open_files, tune_gc

    host = args.host or settings.http_host
    settings.refuse_published_secret_key(host)  # before anything starts: a clear error, exit 1
    configure_logging(settings.log_level)
    app = create_app(settings)
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
        port=args.port or settings.http_port,
        workers=1,
        http=guarded_protocol(guard, answer=render_cut),
        timeout_keep_alive=settings.http_keepalive_timeout_s,
        proxy_headers=False,  # the service decides which forwarded addresses to believe
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        log_config=None,
        access_log=False,
        server_header=False,
    )
    DrainingServer(
        config, drain_s=settings.shutdown_drain_s, begin_drain=app.state.begin_drain
    ).run()
    return 0


def register(subparsers: Any) -> None:
    """Add `serve` to the `ssogw` parser."""
    serve = subparsers.add_parser("serve", help="serve the gateway (uvicorn, one worker)")
    serve.add_argument("--host", help="listen address (default SSOGW_HTTP_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default SSOGW_HTTP_PORT, 8000)")
    serve.set_defaults(handler=cmd_serve)
