"""Artifacts · the AWS clients artifact logging uses (S3, STS, SageMaker), opened on first use and closed together.

A run that logs no file never opens them. Each is one long-lived aioboto3 client for the run's
event loop, with botocore's retries off (sagerun's retry policy is the only one), made from one
aioboto3 session (a new session costs ~50 ms, a client on a reused one ~2 ms).
"""

from __future__ import annotations

import contextlib
from typing import Any, TypeVar

import anyio

from .._model.session import Session

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

    async def get(self, service: str) -> Any:
        """The client of ``service`` (``"s3"``, ``"sts"``, ``"sagemaker"``), opened on first use."""
        client = self._clients.get(service)
        if client is not None:
            return client
        async with self._lock:
            if service not in self._clients:
                from ..backends.aws import open_client

                read_timeout = max(self.session.request_timeout, _S3_MIN_TIMEOUT) if service == "s3" else None
                self._clients[service] = await open_client(self._stack, self.session, service,
                                                           max_connections=self._max_connections,
                                                           read_timeout=read_timeout)
        return self._clients[service]

    async def aclose(self) -> None:
        """Close every client opened (shielded: a cancelled run still releases its connections)."""
        with anyio.CancelScope(shield=True):
            await self._stack.aclose()
        self._clients.clear()
