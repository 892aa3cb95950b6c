"""Run · inside a SageMaker job, what is undelivered at close is kept where the end of the job does
not delete it: the job's checkpoint folder (SageMaker copies it to S3), else S3 beside the run's
files (``s3://<artifact bucket>/<artifact prefix>/<trial component>/spool/``).

The local store's spool is on the container's disk, which goes with the job. ``sagerun sync --from
<that S3 URI>`` delivers what is kept there, from any machine, and is safe to run twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Callable

import anyio
import anyio.to_thread
import orjson

from .._artifacts.state import RunArtifacts, RunParts
from .._model.environment import JobEnvironment, detect_job
from ..backends.base import Backend
from ..store.spool import Spool

logger = logging.getLogger("sagerun")

#: where SageMaker keeps a training job's checkpoints in the container unless its CheckpointConfig says
DEFAULT_CHECKPOINTS = "/opt/ml/checkpoints"
#: the folder of kept spool files, under the checkpoint folder and beside the run's files
FOLDER = "spool"


def arm(stack: contextlib.AsyncExitStack, parts: Callable[[], RunParts], artifacts: RunArtifacts) -> None:
    """Inside a SageMaker job, make closing ``stack`` keep the run's undelivered points beyond the
    job; pushed before the engine is entered, this runs once the engine has flushed."""
    try:
        job = detect_job()
    except RuntimeError:  # an unreadable processing job configuration: load_run says so
        return
    if job is not None and parts().backend.remote:
        stack.push_async_callback(lambda: keep_beyond_job(job, parts(), artifacts))


async def keep_beyond_job(job: JobEnvironment, parts: RunParts, artifacts: RunArtifacts) -> None:
    """Move the run's rows out of the local spool to where the job's end keeps them, and say where;
    within ``close_timeout``, even when the run closes cancelled (a stopped job: SIGTERM). Never
    raises: what cannot be moved stays in the local spool, and the error is logged."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(parts.session.close_timeout) as scope:
        await _keep(job, parts, artifacts)
    if scope.cancelled_caught:
        logger.error("sagerun: the undelivered points of %s stay in the local spool of %s: keeping them beyond "
                     "the %s job took longer than close_timeout", parts.record.trial_component_name,
                     parts.session.store_path, job.kind)


async def _keep(job: JobEnvironment, parts: RunParts, artifacts: RunArtifacts) -> None:
    store, name = parts.session.store_path, parts.record.trial_component_name
    try:
        ids, rows = await anyio.to_thread.run_sync(_rows, store, name)
        if not rows:
            return
        data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
        file_name = f"{name}-{time.time_ns()}.jsonl"
        kept = await checkpoint_spool(job, parts.backend)
        if kept is not None:
            folder, where = kept
            await anyio.to_thread.run_sync(_write, os.path.join(folder, file_name), data)
        else:
            uri = await artifacts.put_bytes(parts, data, f"{FOLDER}/{file_name}", "application/x-ndjson")
            where = uri.rsplit("/", 1)[0] + "/"
        await anyio.to_thread.run_sync(_forget, store, ids)
    except Exception as exc:
        logger.error("sagerun: the undelivered points of %s stay in the local spool of %s, which the end of the "
                     "%s job deletes: keeping them beyond the job failed: %s", name, store, job.kind, exc)
        return
    logger.warning("sagerun: %d undelivered points of %s are kept at %s, beyond the %s job: `sagerun sync --from "
                   "%s` sends them from any machine", len(rows), name, where, job.kind, where)


async def checkpoint_spool(job: JobEnvironment, backend: Backend) -> tuple[str, str] | None:
    """Where a training job with a ``CheckpointConfig`` keeps spool files: the folder in the
    container, and its S3 copy; ``None`` for other jobs.

    Raises:
        BackendError: the job could not be described.
    """
    description = await backend.describe_job(job.kind, job.name) if job.kind == "training" else {}
    checkpoint = description.get("CheckpointConfig") or {}
    if not isinstance(checkpoint, dict) or not checkpoint.get("S3Uri"):
        return None
    folder = os.path.join(str(checkpoint.get("LocalPath") or DEFAULT_CHECKPOINTS), "sagerun", FOLDER)
    return folder, f"{str(checkpoint['S3Uri']).rstrip('/')}/sagerun/{FOLDER}/"


def _rows(store: str, name: str) -> tuple[list[int], list[dict[str, object]]]:
    if not os.path.exists(store):
        return [], []
    with Spool(store) as spool:
        return spool.rows_of(name)


def _forget(store: str, ids: list[int]) -> None:
    with Spool(store) as spool:
        spool.remove(ids)


def _write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".partial"  # SageMaker copies the folder as it changes: never half a file
    with open(partial, "wb") as file:
        file.write(data)
    os.replace(partial, path)
