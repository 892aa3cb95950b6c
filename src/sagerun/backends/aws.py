"""Backends · aioboto3 clients as sagerun makes them: one shared session, botocore's retries off, models
loaded off the event loop.

A new aioboto3 session reloads botocore's service models on its first client (0.2-0.5 s for
SageMaker here); one session per process and thread lets every run after the first skip that.
Clients are still made per event loop, as aiobotocore requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from typing import Any, Awaitable, Callable, TypeVar

import aiohttp
import aioboto3
import anyio
import botocore.config
import botocore.exceptions

from .._model.errors import TransportError, classify
from .._model.retry import retry_call
from .._model.session import Session

T = TypeVar("T")

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


_CONNECTION_ERRORS = (
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    OSError,
)


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def as_transport_error(exc: BaseException) -> TransportError | None:
    """The retryable ``TransportError`` a botocore or network failure stands for, else ``None``."""
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        error = classify(status, error_code(exc), str(exc))
        return error if error.retryable else None
    if isinstance(exc, _CONNECTION_ERRORS):
        never_sent = isinstance(exc, (botocore.exceptions.EndpointConnectionError,
                                      botocore.exceptions.ConnectTimeoutError, aiohttp.ClientConnectorError))
        return TransportError(f"connection failed: {type(exc).__name__}: {exc}", retryable=True,
                              unanswered=not never_sent)
    return None


async def call_with_retries(session: Session, method: Callable[..., Awaitable[T]], *,
                            transient_only_if_throttled: bool = False, deadline: float | None = None,
                            **kwargs: Any) -> T:
    """``await method(**kwargs)`` under sagerun's retry policy (throttling, 5xx, resets, timeouts),
    or, with ``transient_only_if_throttled``, retrying only throttling and connection failures.

    Raises:
        botocore.exceptions.ClientError: the call was refused, or failed past the deadline.
        TransportError: the last attempt failed on the network past the deadline.
    """
    async def once() -> T:
        try:
            return await method(**kwargs)
        except Exception as exc:
            transient = as_transport_error(exc)
            if transient is None or (transient_only_if_throttled and not transient.throttled
                                     and isinstance(exc, botocore.exceptions.ClientError)):
                raise
            raise transient from exc

    try:
        return await retry_call(session, once, deadline=deadline)
    except Exception as exc:
        # The last attempt's own error says more than its retryable stand-in.
        cause = exc.__cause__
        if isinstance(cause, botocore.exceptions.ClientError):
            raise cause from None
        raise


def short_error(exc: BaseException) -> str:
    """``exc`` in one line for a log: moto answers the calls it lacks with a whole HTML page."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def not_found(exc: botocore.exceptions.ClientError) -> bool:
    """Whether a refusal says that what was asked for does not exist."""
    # SageMaker answers ResourceNotFound; moto a ValidationException that "could not find" it.
    message = str(exc).lower()
    return error_code(exc).startswith("ResourceNotFound") or any(
        words in message for words in ("not found", "does not exist", "could not find"))
