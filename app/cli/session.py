"""What a command works with: the primary's DSN, the gateway opened for it, its operator.

Commands that need use cases take them from the gateway that ``app.main`` builds (the one
composition root), opened without HTTP; the audit records of their calls name the operator
(the OS user) and the host, with protocol ``cli``.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import socket
import uuid
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from app.admission.records import Protocol
from app.audit.records import Requester
from app.db.pools import resolve_dsns
from app.settings import Settings

if TYPE_CHECKING:
    from app.main import Gateway

T = TypeVar("T")


def primary_dsn(settings: Settings) -> str:
    """The primary's DSN, from settings or the local pair."""
    return resolve_dsns(
        primary_dsn=settings.primary_dsn,
        replica_dsns=settings.replica_dsns,
        data_dir=Path(settings.data_dir),
    )[0]


def run_async(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` to its end on a new event loop."""
    return asyncio.run(work())


def gateway(settings: Settings) -> AbstractAsyncContextManager[Gateway]:
    """The gateway opened for one command (primary only, no HTTP), closed on leaving."""
    # Imported here, so that `--help` and the database commands do not load the whole app.
    from app.main import open_gateway

    return open_gateway(settings)


def account() -> str:
    """The OS account this process runs as: its name, or ``uid:N`` where the account has none
    (a container's arbitrary user). Never ``LOGNAME`` or ``USER``, which anyone may set:
    ``getpass.getuser()`` reads them first, so a command's records could name a colleague."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def operator() -> Requester:
    """The person at this terminal, as their audit records name them: the OS account."""
    return Requester(
        protocol=Protocol.CLI.value,
        principal_kind="operator",
        request_id=uuid.uuid4().hex,
        operator=account(),
        terminal=socket.gethostname(),
    )
