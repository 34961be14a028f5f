"""The ceiling for the HTTP figures: a bare FastAPI endpoint returning a constant.

Served by bench/run.py exactly as ``ssogw serve`` serves the gateway (uvicorn, one worker, no
access log), so the ratio of an operation's requests/s to this one's is the share of the
framework's ceiling that the gateway's own work leaves.
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/const")
async def const() -> dict[str, str]:
    """A constant."""
    return {"status": "ok"}
