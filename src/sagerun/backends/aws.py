"""aioboto3 clients as sagerun makes them: one shared session, botocore's retries off, models
loaded off the event loop.

A new aioboto3 session reloads botocore's service models on its first client (0.2-0.5 s for
SageMaker here); one session per process and thread lets every run after the first skip that.
Clients are still made per event loop, as aiobotocore requires.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import aioboto3
import anyio
import botocore.config

from .._session import Session

_shared: dict[tuple[int, int], aioboto3.Session] = {}
_lock = threading.Lock()


def boto_session(session: Session) -> aioboto3.Session:
    """The session's own aioboto3 session, else the one shared by this process and thread (a forked
    child gets a new one: it must not share the parent's credential refresh state)."""
    if session.boto_session is not None:
        return session.boto_session
    key = (os.getpid(), threading.get_ident())
    with _lock:
        if key not in _shared:
            _shared[key] = aioboto3.Session()
        return _shared[key]


async def open_client(stack: contextlib.AsyncExitStack, session: Session, service: str, *,
                      max_connections: int = 10, read_timeout: float | None = None) -> Any:
    """A client of ``service`` entered on ``stack``, with sagerun's timeouts and no botocore retries."""
    boto = boto_session(session)
    # Reading a service's model means parsing large JSON files: done in a worker thread so that the
    # event loop (and the metrics drain on it) is not held up.
    loader = boto._session.get_component("data_loader")
    for kind in ("service-2", "endpoint-rule-set-1"):
        await anyio.to_thread.run_sync(loader.load_service_model, service, kind)
    config = botocore.config.Config(
        retries={"total_max_attempts": 1},  # sagerun's retry policy is the only one
        max_pool_connections=max(10, max_connections),
        connect_timeout=session.request_timeout,
        read_timeout=read_timeout or session.request_timeout,
    )
    return await stack.enter_async_context(boto.client(
        service, region_name=session.region, endpoint_url=session.endpoint_for(service), config=config))
