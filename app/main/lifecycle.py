"""Starting and stopping a wired gateway: pools, background tasks, the last seal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.main.gateway import Gateway, build_gateway
from app.observability.loop_lag import measure_loop_lag
from app.settings import Settings


async def start_gateway(gw: Gateway, *, background: bool = True) -> None:
    """Claim the audit spool (SpoolUnusable: this instance must not serve), open the pools and
    start the background tasks (none when ``background`` is false)."""
    await gw.audit.claim_spool()
    await gw.db.open()
    await gw.audit.start()
    await gw.replay.start()
    if not background:
        return
    await gw.principal_changes.start()
    await gw.sealer.start()
    await gw.refusals.start()
    gw.background.append(
        asyncio.create_task(measure_loop_lag(gw.metrics.event_loop_lag), name="loop-lag")
    )
    gw.background.append(
        asyncio.create_task(
            gw.complaint_cases.publish_open_counts(gw.metrics.open_complaints_counted),
            name="open-complaints-gauge",
        )
    )


async def stop_gateway(gw: Gateway) -> None:
    """Flush the audit queue and seal the chain head, stop the tasks, close the pools."""
    for task in gw.background:
        task.cancel()
    await asyncio.gather(*gw.background, return_exceptions=True)
    gw.background.clear()
    await gw.principal_changes.stop()
    await gw.replay.stop()  # the claims queued are settled first
    try:
        await gw.refusals.stop()  # its counts go through the writer: before it stops
        await gw.audit.stop()
    finally:
        try:
            await gw.sealer.stop()  # after the flush, so the last records are sealed too
        finally:
            await gw.db.close()


@asynccontextmanager
async def open_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """The gateway opened for one operator command: no HTTP, no background tasks."""
    gw = build_gateway(settings, command=True)
    try:  # a pool that did open is closed even if the next one fails
        await start_gateway(gw, background=False)
        yield gw
    finally:
        await stop_gateway(gw)
