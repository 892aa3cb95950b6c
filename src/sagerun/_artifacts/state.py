"""Artifacts · what a run keeps for logging artifacts, and the steps of each artifact call.

The async ``Run`` holds one ``RunArtifacts`` and hands it, per call, what it has at that moment
(``RunParts``: its record, entered backend, session and exit stack). Storage and AWS clients are
made on first use: a run that logs no file costs nothing here. Every step that blocks runs in a
worker thread, and every request is awaited I/O on the event loop, so that the metric queue and its
background delivery never wait for an upload.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from typing import Any, Callable, NamedTuple

import anyio
import anyio.to_thread

from .._model.errors import BackendError
from .._model.session import Session
from ..backends.base import Backend
from ..backends.mlflow import MlflowBackend
from .._model.records import Artifact, RunRecord
from . import charts, tables
from .rows import GrowingTables
from .limits import ArtifactSlots, check_artifact, guess_media_type
from .storage import GZIP, LocalStorage, Storage, StoredObject, archived, file_name, readable_file

logger = logging.getLogger("sagerun")


class RunParts(NamedTuple):
    """What an open run lends to an artifact call."""

    record: RunRecord
    backend: Backend
    session: Session
    stack: contextlib.AsyncExitStack


class RunArtifacts:
    """Artifact logging of one run: where its files go, its slots, its lineage.

    Raises:
        TypeError, ValueError: ``bucket`` or ``prefix`` is not a str (or ``None``), or the bucket name
            holds a ``/`` or ``s3://``.
    """

    def __init__(self, bucket: str | None = None, prefix: str | None = None) -> None:
        for argument, value in (("artifact_bucket", bucket), ("artifact_prefix", prefix)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{argument} must be a str or None; got {type(value).__name__}")
        if bucket is not None and (not bucket or "/" in bucket):
            raise ValueError(f"artifact_bucket must be a bucket name, without s3:// or a key; got {bucket!r}")
        self.bucket = bucket
        self.prefix = prefix
        self.slots = ArtifactSlots()
        self.rows = GrowingTables()
        self._storage: Storage | None = None
        self._clients: Any = None
        self._lineage: Any = None
        self._lock = anyio.Lock()

    def log_artifact(self, record: RunRecord, name: str, value: str, media_type: str | None, is_output: bool) -> None:
        """Record a value (a URI, a path, text) as an artifact; no I/O.

        Raises:
            TypeError, ValueError: a bad name, value or media type, or the run's 30 artifacts of that
                direction are taken.
        """
        check_artifact(name, value, media_type)
        self.slots.check(record, name, is_output)
        self.slots.put(record, name, Artifact(value, media_type), is_output)

    async def log_file(self, parts: RunParts, file_path: Any, name: str | None, media_type: str | None,
                       is_output: bool, archive_name: str | None = None) -> str:
        """Store the file, or a folder as ``<archive_name or its name>.tar.gz``, and record its URI;
        return the URI.

        Raises:
            TypeError, ValueError: the file is missing or unreadable, a bad name or media type, or no
                slot is left (all before anything is uploaded).
            BackendError: the file could not be stored.
        """
        if isinstance(file_path, (str, os.PathLike)) and os.path.isdir(file_path):
            folder = os.path.abspath(os.fspath(file_path))
            base = archive_name or os.path.basename(folder.rstrip(os.sep))
            check_artifact(name or base, "", GZIP)
            async with archived(folder, base) as archive:
                return await self.log_file(parts, archive, name or base, GZIP, is_output)
        path, _ = readable_file(file_path)
        base = os.path.basename(path)
        name = base if name is None else name
        if media_type is None:
            media_type = guess_media_type(path)
        check_artifact(name, "", media_type)
        with self.slots.reserved(parts.record, name, is_output):
            storage = await self._storage_for(parts)
            stored = await storage.put_file(path, file_name(base), media_type)
            _warn_if_shared(parts.record, name, stored.uri)
            self.slots.put(parts.record, name, Artifact(stored.uri, media_type), is_output)
        logger.debug("sagerun: logged file %s as %s", path, stored.uri)
        return stored.uri

    async def log_document(self, parts: RunParts, name: str, kind: str, render: Callable[[], bytes],
                           is_output: bool) -> str:
        """Render a chart or table document in a worker thread, store it as ``<name>.json``, record it
        and link it in lineage (SageMaker only); return its URI.

        Raises:
            TypeError, ValueError: a bad name, no slot left, or ``render`` refused the data.
            BackendError: the document could not be stored.
        """
        stored = await self._store_rendered(parts, name, render, ".json", charts.MEDIA_TYPE, is_output)
        if self._storage is not None and self._storage.remote:
            await self._lineage_for(parts).link(name, kind, stored, is_output=is_output)
        return stored.uri

    async def log_image(self, parts: RunParts, name: str, path: Any, figure: Any) -> str:
        """Store a PNG or JPEG file, or a matplotlib figure drawn to PNG, as output artifact ``name``
        with its media type; return its URI.

        Raises:
            ValueError: both or neither of ``path`` and ``figure``, a file that is not a PNG or JPEG,
                a bad name, or no slot left.
            TypeError: ``figure`` is not a matplotlib figure.
            RuntimeError: a figure without matplotlib installed.
            BackendError: the image could not be stored.
        """
        from . import images

        images.check_source(path, figure)
        if path is not None:
            readable, _ = readable_file(path)
            media_type, _ = await anyio.to_thread.run_sync(images.image_type, readable)
            return await self.log_file(parts, readable, name, media_type, True)
        stored = await self._store_rendered(parts, name, lambda: images.figure_png(figure), ".png", images.PNG, True)
        return stored.uri

    async def log_code(self, parts: RunParts, path: Any, max_bytes: int) -> str:
        """Archive the folder ``path`` (see ``code``) and store it as the input artifact ``code``;
        inside a SageMaker training job with a source archive, record that archive's URI instead.

        Raises:
            TypeError: ``path`` is not a str or path, or ``max_bytes`` not a positive int.
            ValueError: ``path`` is not a folder, or its files pass ``max_bytes`` (CodeTooLargeError).
            BackendError: the archive could not be stored.
        """
        from .._model.environment import detect_job
        from . import code

        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or path; got {type(path).__name__}")
        if type(max_bytes) is not int or max_bytes < 1:
            raise TypeError(f"max_bytes must be a positive int; got {max_bytes!r}")
        submitted = code.submitted_source() if detect_job() is not None else None
        if submitted is not None:
            self.log_artifact(parts.record, "code", submitted, code.MEDIA_TYPE, False)
            return submitted
        archive = await anyio.to_thread.run_sync(code.archive, os.fspath(path), max_bytes)
        try:
            return await self.log_file(parts, archive, "code", code.MEDIA_TYPE, False)
        finally:
            await anyio.to_thread.run_sync(shutil.rmtree, os.path.dirname(archive), True)

    async def _store_rendered(self, parts: RunParts, name: str, render: Callable[[], bytes], extension: str,
                              media_type: str, is_output: bool) -> StoredObject:
        """Render in a worker thread, store as ``<name><extension>`` and record it as an artifact."""
        check_artifact(name, "", media_type)
        with self.slots.reserved(parts.record, name, is_output):
            data = await anyio.to_thread.run_sync(render)
            storage = await self._storage_for(parts)
            stored = await storage.put_bytes(data, file_name(name, extension), media_type)
            self.slots.put(parts.record, name, Artifact(stored.uri, media_type), is_output)
        return stored

    async def log_chart(self, parts: RunParts, kind: str, title: str | None, is_output: bool,
                        build: Callable[[], dict[str, Any]]) -> str:
        """``log_document`` of the chart ``build()`` computes, named by its title. On MLflow, also
        ``<name>.png`` beside it where matplotlib is installed, since MLflow's UI shows images, not
        these documents."""
        name = charts.chart_name(kind, title)
        document: dict[str, Any] = {}

        def render() -> bytes:
            document.update(build())
            return charts.dumps(document)

        uri = await self.log_document(parts, name, kind, render, is_output)
        if isinstance(parts.backend, MlflowBackend):
            await self._chart_image(parts, name, document)
        return uri

    async def log_table(self, parts: RunParts, name: str, data: Any) -> str:
        """``log_document`` of ``data`` as a table document, an output named ``name``; on MLflow in
        MLflow's table JSON, listed in the run's ``mlflow.loggedArtifacts`` as ``mlflow.log_table``
        lists it."""
        if not isinstance(name, str):
            raise TypeError(f"table name must be a str; got {type(name).__name__}")
        mlflow = isinstance(parts.backend, MlflowBackend)
        uri = await self.log_document(parts, name, tables.TABLE,
                                      lambda: tables.table_document(name, data, mlflow=mlflow), True)
        if isinstance(parts.backend, MlflowBackend):
            await parts.backend.list_table(parts.record.trial_component_name, file_name(name, ".json"))
        return uri

    async def write_rows(self, parts: RunParts) -> None:
        """Store every ``log_row`` table that gained rows since it was last stored.

        Raises:
            TypeError, ValueError: no artifact slot is left for a table.
            BackendError: a table could not be stored (it is stored on the next call).
        """
        changed = self.rows.take_changed()
        for name, rows in changed.items():
            try:
                await self.log_table(parts, name, rows)
            except BaseException:
                self.rows.put_back(set(changed))
                raise

    async def close_rows(self, parts: RunParts, deadline: float) -> None:
        """``write_rows`` at close: before ``deadline`` (``time.monotonic()``), even when cancelled;
        never raises (a table that cannot be stored is named in an error)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(max(0.5, deadline - time.monotonic())) as scope:
            try:
                await self.write_rows(parts)
            except Exception as exc:
                logger.error("sagerun: the tables of %s logged with log_row were not stored: %s",
                             parts.record.trial_component_name, exc)
        if scope.cancelled_caught:
            logger.error("sagerun: the tables of %s logged with log_row were not stored within close_timeout",
                         parts.record.trial_component_name)

    async def put_bytes(self, parts: RunParts, data: bytes, file_name: str, media_type: str | None) -> str:
        """Store ``data`` beside the run's files as ``file_name`` (not recorded as an artifact);
        return its URI.

        Raises:
            BackendError: it could not be stored.
        """
        storage = await self._storage_for(parts)
        return (await storage.put_bytes(data, file_name, media_type)).uri

    # -- made on first use ------------------------------------------------------------------------

    async def _storage_for(self, parts: RunParts) -> Storage:
        if self._storage is not None:
            return self._storage
        async with self._lock:
            if self._storage is None:
                name = parts.record.trial_component_name
                if isinstance(parts.backend, MlflowBackend):
                    self._storage = await self._mlflow_storage(parts, parts.backend)
                elif parts.backend.remote:
                    from .clients import AwsClients
                    from .s3 import S3Options, S3Storage

                    options = S3Options.from_session(parts.session)
                    self._clients = AwsClients(parts.session, max_connections=options.max_concurrency)
                    # Closed with the run; until then one set of connections serves every upload.
                    parts.stack.push_async_callback(self._clients.aclose)
                    self._storage = S3Storage(self._clients, name, bucket=self.bucket, prefix=self.prefix,
                                              options=options)
                else:
                    store = getattr(parts.backend, "store_path", None) or parts.session.store_path
                    self._storage = LocalStorage(store, name)
        return self._storage

    async def _mlflow_storage(self, parts: RunParts, backend: MlflowBackend) -> Storage:
        from .mlflow_store import MlflowArtifactStorage

        uri = backend.artifact_uris.get(parts.record.trial_component_name, "")
        s3 = None
        if uri.startswith("s3://"):  # SageMaker's managed MLflow: the server names a bucket
            from .clients import AwsClients
            from .s3 import S3Options, S3Storage

            options = S3Options.from_session(parts.session)
            self._clients = AwsClients(parts.session, max_connections=options.max_concurrency)
            parts.stack.push_async_callback(self._clients.aclose)
            bucket, _, key = uri[len("s3://"):].partition("/")
            s3 = S3Storage(self._clients, "", bucket=bucket, prefix=key, options=options)
        return MlflowArtifactStorage(backend.rest, parts.session, uri, s3)

    async def _chart_image(self, parts: RunParts, name: str, document: dict[str, Any]) -> None:
        from .preview import chart_image

        try:
            png = await anyio.to_thread.run_sync(chart_image, document)
            if png is not None:
                storage = await self._storage_for(parts)
                await storage.put_bytes(png, file_name(name, ".png"), "image/png")
        except (BackendError, ValueError) as exc:
            # The chart itself is stored and recorded; only its picture is missing.
            logger.warning("sagerun: chart %r is stored, but not its image %s: %s", name, file_name(name, ".png"), exc)

    def _lineage_for(self, parts: RunParts) -> Any:
        if self._lineage is None:
            from .lineage import Lineage

            self._lineage = Lineage(self._clients, parts.record.trial_component_name)
        return self._lineage


def _warn_if_shared(record: RunRecord, name: str, uri: str) -> None:
    # Files are stored under their own name (the SageMaker SDK's layout), so two files of one name
    # logged as different artifacts share one object: the first one's content is gone. Say so.
    for group in (record.output_artifacts, record.input_artifacts):
        for other, artifact in group.items():
            if other != name and artifact.value == uri:
                logger.warning("sagerun: artifact %r replaced the file of artifact %r at %s (files are stored by "
                               "file name): rename one of the files to keep both", name, other, uri)
                return


__all__ = ["RunArtifacts", "RunParts"]
