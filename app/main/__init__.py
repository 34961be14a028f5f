"""The one composition root: build the gateway (pools, stores, services) and the app.

``gateway`` wires the object graph, ``lifecycle`` starts and stops it, ``http_app`` puts it
behind HTTP. Only this package (and the CLI, through it) knows every feature.
"""

from app.main.gateway import Gateway, build_gateway, wall_clock
from app.main.http_app import create_app, render_cut, render_edge_refusal
from app.main.lifecycle import open_gateway, start_gateway, stop_gateway

__all__ = [
    "Gateway",
    "build_gateway",
    "create_app",
    "open_gateway",
    "render_cut",
    "render_edge_refusal",
    "start_gateway",
    "stop_gateway",
    "wall_clock",
]
