"""Artifacts · the files of a run of an MLflow server, where the server keeps them.

A run's ``artifact_uri`` says where: ``mlflow-artifacts:/<experiment>/<run>/artifacts`` when the
server serves artifacts itself (``--serve-artifacts``), uploaded through its artifact API; or
``s3://<bucket>/<path>``, as on SageMaker's managed MLflow, written to S3 directly with the
AWS credential chain. The recorded URI is the artifact's in the run's artifact URI, as MLflow's
client records it.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from .._model.errors import BackendError, TransportError
from .._model.retry import retry_call
from .._model.session import Session
from ..backends.mlflow_rest import ARTIFACTS, MlflowREST
from .storage import StoredObject


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


class MlflowArtifactStorage:
    """Keeps one run's files under its ``artifact_uri``; ``s3`` stores them for an ``s3://`` one."""

    remote = False  # no SageMaker lineage for these

    def __init__(self, rest: MlflowREST, session: Session, artifact_uri: str, s3: Any = None) -> None:
        self.rest = rest
        self.session = session
        self.artifact_uri = artifact_uri.rstrip("/")
        self.s3 = s3

    async def put_file(self, path: str, file_name: str, media_type: str | None) -> StoredObject:
        if self.s3 is not None:
            return self._as_mlflow(await self.s3.put_file(path, file_name, media_type), file_name)
        # The artifact API takes a body of one piece: files are read whole, off the event loop.
        return await self.put_bytes(await anyio.to_thread.run_sync(_read, path), file_name, media_type)

    async def put_bytes(self, data: bytes, file_name: str, media_type: str | None) -> StoredObject:
        if self.s3 is not None:
            return self._as_mlflow(await self.s3.put_bytes(data, file_name, media_type), file_name)
        if not self.artifact_uri.startswith("mlflow-artifacts:"):
            raise BackendError(f"cannot store {file_name!r}: the run's artifact location {self.artifact_uri!r} is "
                               "neither served by the MLflow server (--serve-artifacts) nor in S3")
        path = ARTIFACTS + self.artifact_uri.split(":", 1)[1].lstrip("/") + "/" + file_name

        async def put() -> int:
            status, _ = await self.rest.send("PUT", path, data, content_type=media_type or "application/octet-stream")
            if status == 429 or status >= 500:
                raise TransportError(f"artifact upload answered {status}", retryable=True, throttled=status == 429)
            return status

        try:
            status = await retry_call(self.session, put)
        except TransportError as exc:
            raise BackendError(f"could not store {file_name!r} on the MLflow server {self.rest.address.base}: "
                               f"{exc}") from exc
        if status != 200:
            raise BackendError(f"the MLflow server {self.rest.address.base} refused {file_name!r}: HTTP {status}")
        return StoredObject(f"{self.artifact_uri}/{file_name}")

    def _as_mlflow(self, stored: StoredObject, file_name: str) -> StoredObject:
        return StoredObject(f"{self.artifact_uri}/{file_name}", stored.etag)
