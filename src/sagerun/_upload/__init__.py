"""Upload · what the local store holds for SageMaker (or an MLflow server), sent there (the
``sagerun sync`` command).

* ``push``: runs logged to the local store, created in SageMaker with their files, their points
  spooled; final states that could not be saved at close, saved now.
* ``deliver``: the spool, sent through the ingest layer's delivery core.
* ``fetch``: spool files kept in S3 beyond a SageMaker job, taken into the local spool first.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import anyio
import anyio.to_thread
import botocore.exceptions

from .._model.errors import SagerunError
from .._model.session import Session
from ..backends import backend_name, make_backend
from ..backends.sagemaker import SageMakerBackend
from ..store.journal import recover
from ..store.spool import Spool
from .deliver import UploadReport, deliver
from .fetch import fetch_spool
from .push import local_runs, push_run, save_unsaved, unsaved_runs

__all__ = ["UploadError", "UploadProgress", "UploadReport", "upload_store"]


class UploadError(SagerunError):
    """SageMaker could not be reached at all (no region or endpoint could be resolved, for instance)."""


class UploadProgress(Protocol):
    """What ``upload_store`` tells of its progress: the points to deliver, then each settled lot."""

    def start(self, total: int) -> None: ...

    def advance(self, settled: int) -> None: ...


async def upload_store(session: Session, *, runs: Sequence[str] = (), all_local: bool = False,
                       retry_refused: bool = False, concurrency: int = 8,
                       progress: UploadProgress | None = None, from_uri: str | None = None) -> UploadReport:
    """Deliver the spool of ``session.store_path`` to SageMaker; first take into it the journal files
    of runs whose process was killed (points spilled beyond the queue), the spool files kept beyond
    a SageMaker job under ``from_uri`` (``s3://…/spool/``, the store made if missing),
    push the local runs named in ``runs`` (``experiment/run`` or a run name), or every local run
    with ``all_local``, and make the points set aside pending again with ``retry_refused``.

    Returns the report; its ``error`` says why delivery stopped early, if it did.

    Raises:
        NoStoreError: there is no local store (and no ``from_uri``).
        ValueError: ``from_uri`` is not an ``s3://`` URI, or holds a file that is not a spool file.
        RunNotFoundError, AmbiguousRunError: a name in ``runs`` does not name exactly one local run.
        UploadError: SageMaker could not be reached (no region, no credentials).
        BackendError: a local run could not be created or saved in SageMaker.
    """
    store_path = session.store_path
    recovered = await anyio.to_thread.run_sync(recover, store_path)  # first: it may make the store
    with Spool(store_path, create=from_uri is not None) as spool:
        fetched = 0
        if from_uri is not None:
            try:
                fetched = await fetch_spool(session, spool, from_uri)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                raise UploadError(f"could not read the kept spool files under {from_uri}: {exc}") from exc
        local = await anyio.to_thread.run_sync(local_runs, store_path, list(runs), all_local)
        if retry_refused:
            await anyio.to_thread.run_sync(spool.release_refused)
        unsaved = await anyio.to_thread.run_sync(unsaved_runs, store_path)
        if not local and not unsaved and not await anyio.to_thread.run_sync(spool.count):
            # Nothing to send: no need for credentials or a connection to say so.
            return UploadReport(set_aside=await anyio.to_thread.run_sync(spool.refused), fetched=fetched,
                                recovered=recovered)
        try:
            # The spool goes where the session's backend is: SageMaker, or an MLflow server
            # (SAGERUN_BACKEND=mlflow), whose runs the spool names by their MLflow run ids.
            remote = make_backend(session) if backend_name(session) == "mlflow" else SageMakerBackend(session)
            async with remote as backend:
                saved = [await save_unsaved(backend, store_path, run_id, record) for run_id, record in unsaved]
                pushed = {run.ref: await push_run(backend, session, store_path, run) for run in local}
                if progress is not None:
                    progress.start(await anyio.to_thread.run_sync(spool.count))
                report = await deliver(backend, spool, session, concurrency=concurrency,
                                       progress=progress.advance if progress is not None else None)
        except botocore.exceptions.BotoCoreError as exc:
            raise UploadError(f"could not reach SageMaker: {exc}") from exc
    report.pushed = pushed
    report.saved = saved
    report.fetched = fetched
    report.recovered = recovered
    return report
