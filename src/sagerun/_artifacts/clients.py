"""The AWS clients artifact logging uses (S3, STS, SageMaker), opened on first use and closed together.

A run that logs no file never opens them. Each is one long-lived aioboto3 client for the run's
event loop, with botocore's retries off (sagerun's retry policy is the only one), made from one
aioboto3 session (a new session costs ~50 ms, a client on a reused one ~2 ms).
"""

from __future__ import annotations

import contextlib
from typing import Any, Awaitable, Callable, TypeVar

import anyio

from .._session import Session

T = TypeVar("T")
# A part of a large upload takes longer than a control call to be answered: S3 reads a whole part
# before it answers, so its read timeout must not be a control call's few seconds.
_S3_MIN_TIMEOUT = 120.0


class AwsClients:
    """aioboto3 clients by service name, for one event loop; ``await aclose()`` when done."""

    def __init__(self, session: Session, *, max_connections: int = 10) -> None:
        self.session = session
        self._max_connections = max_connections
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._lock = anyio.Lock()
        self._boto: Any = None

    async def get(self, service: str) -> Any:
        """The client of ``service`` (``"s3"``, ``"sts"``, ``"sagemaker"``), opened on first use."""
        client = self._clients.get(service)
        if client is not None:
            return client
        async with self._lock:
            if service not in self._clients:
                import aioboto3
                import botocore.config

                if self._boto is None:
                    self._boto = self.session.boto_session or aioboto3.Session()
                timeout = self.session.request_timeout
                if service == "s3":
                    timeout = max(timeout, _S3_MIN_TIMEOUT)
                # Loading a service's model reads large JSON files: done in a worker thread, so the
                # event loop (and the metrics drain on it) is not held up by the first upload.
                loader = self._boto._session.get_component("data_loader")
                for kind in ("service-2", "endpoint-rule-set-1"):
                    await anyio.to_thread.run_sync(loader.load_service_model, service, kind)
                config = botocore.config.Config(
                    retries={"total_max_attempts": 1}, max_pool_connections=max(10, self._max_connections),
                    connect_timeout=self.session.request_timeout, read_timeout=timeout)
                self._clients[service] = await self._stack.enter_async_context(self._boto.client(
                    service, region_name=self.session.region, endpoint_url=self.session.endpoint_for(service),
                    config=config))
        return self._clients[service]

    async def aclose(self) -> None:
        """Close every client opened (shielded: a cancelled run still releases its connections)."""
        with anyio.CancelScope(shield=True):
            await self._stack.aclose()
        self._clients.clear()


async def call_with_retries(session: Session, method: Callable[..., Awaitable[T]], *,
                            transient_only_if_throttled: bool = False, deadline: float | None = None,
                            **kwargs: Any) -> T:
    """``await method(**kwargs)`` under sagerun's retry policy (throttling, 5xx, resets, timeouts),
    or, with ``transient_only_if_throttled``, retrying only throttling and connection failures.

    Raises:
        botocore.exceptions.ClientError: the call was refused, or failed past the deadline.
        TransportError: the last attempt failed on the network past the deadline.
    """
    import botocore.exceptions

    from .._ingest.retry import retry_call
    from ..backends.sagemaker import as_transport_error

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
