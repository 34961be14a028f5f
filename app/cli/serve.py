"""`ssogw serve`: the gateway under uvicorn, one worker, draining on SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

from app.settings import Settings


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the app that ``app.main.create_app`` builds until told to stop."""
    import uvicorn

    from app.main import create_app
    from app.observability.logs import configure_logging
    from app.observability.serving import DrainingServer, tune_gc

    host = args.host or settings.http_host
    settings.refuse_published_secret_key(host)  # before anything starts: a clear error, exit 1
    configure_logging(settings.log_level)
    app = create_app(settings)
    tune_gc()
    config = uvicorn.Config(
        app,
        host=host,
        port=args.port or settings.http_port,
        workers=1,
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
