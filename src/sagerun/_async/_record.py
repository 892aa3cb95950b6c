"""Run · a run's record in its backend: opened InProgress, given its final status, and saved at
close, or kept in the local store for ``sagerun sync`` when that save fails.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time

import anyio
import anyio.to_thread

from .._model.checks import MAX_STATUS_MESSAGE
from .._model.environment import job_hosts, process_rank
from .._model.records import RunRecord
from .._model.tags import tag_text
from .._model.session import Session
from ..backends.base import Backend
from ..store.records import keep_unsaved
from ._signals import Terminated

logger = logging.getLogger("sagerun")


async def open_record(backend: Backend, record: RunRecord, owner: bool = True) -> RunRecord:
    """Load or create the run of ``record`` and, for its ``owner``, mark it InProgress; return what
    the backend keeps.

    Raises:
        BackendError: the run could not be loaded, created or saved.
    """
    stored = await backend.open_run(record)
    if not owner:
        return stored
    stored.status = "InProgress"
    stored.status_message = None
    stored.end_time = None
    stored.start_time = stored.start_time or _now()
    await backend.save_run(stored)
    return stored


def end(record: RunRecord, exc: BaseException | None, terminated: bool) -> None:
    """Set the final status of ``record`` from how its block ended: Completed, Failed (with the
    exception's message) or Stopped (cancelled, interrupted, SIGTERM)."""
    if exc is None:
        record.status = "Completed"
    elif terminated:
        record.status, record.status_message = "Stopped", "SIGTERM"
    elif isinstance(exc, (KeyboardInterrupt, Terminated, anyio.get_cancelled_exc_class())):
        record.status, record.status_message = "Stopped", f"{type(exc).__name__}: {exc}".rstrip(": ")
    else:
        record.status, record.status_message = "Failed", f"{type(exc).__name__}: {exc}"
    if record.status_message:
        record.status_message = record.status_message[:MAX_STATUS_MESSAGE]
    record.end_time = _now()


def snapshot(record: RunRecord) -> RunRecord:
    """``record`` with its own copies of parameters and artifacts: callers on other threads (the sync
    facade) may log more while it is being saved on the engine's thread."""
    return dataclasses.replace(record, parameters=dict(record.parameters),
                               input_artifacts=dict(record.input_artifacts),
                               output_artifacts=dict(record.output_artifacts))


#: seconds of close_timeout kept for the final save, at the most (a quarter of it, at the least)
FINAL_SAVE_RESERVE = 2.0


def final_save_reserve(session: Session) -> float:
    """The end of ``close_timeout`` that delivering the metrics leaves to the final save: with one
    server down for both (MLflow), a close then takes ``close_timeout``, not twice that."""
    return min(FINAL_SAVE_RESERVE, session.close_timeout / 4)


async def save_final(backend: Backend, record: RunRecord, session: Session, closing_since: float) -> None:
    """Save the ended ``record`` within what is left of ``close_timeout`` since the close began at
    ``closing_since`` (``time.monotonic()``), and at least ``final_save_reserve``, even when
    cancelled; if that fails, keep it in the local store (for a remote backend) and say so. Never
    raises."""
    elapsed = time.monotonic() - closing_since
    left = max(final_save_reserve(session), session.close_timeout - elapsed)
    with anyio.CancelScope(shield=True):  # a cancelled run still ends with its status saved or kept
        try:
            with anyio.fail_after(left):
                await backend.save_run(record)
        except Exception as exc:
            await _keep(backend, record, session, exc)


async def _keep(backend: Backend, record: RunRecord, session: Session, error: Exception) -> None:
    status, name, store = record.status, record.trial_component_name, session.store_path
    if backend.remote:
        try:
            await anyio.to_thread.run_sync(keep_unsaved, store, record, str(error))
        except Exception as exc:
            error = RuntimeError(f"{error}; keeping it for later failed too: {exc}")
        else:
            logger.error("sagerun: the final status %s of %s was not saved: %s; it is kept in %s, and "
                         "`sagerun sync --store %s` saves it", status, name, error, store, store)
            return
    logger.error("sagerun: the final status %s of %s was not saved: %s", status, name, error)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


FAILURE_TAG = "sagerun:failed:"


async def note_failure(backend: Backend, record: RunRecord) -> None:
    """For a process that does not own the run: a failure or a stop of its own becomes a tag of the
    run (``sagerun:failed:<host>/rank<N>``, its message the value), its status stays the owner's.
    Never raises: a tag that cannot be set is logged."""
    if record.status not in ("Failed", "Stopped"):
        return
    hosts = job_hosts()
    where = f"{hosts.current}/rank{process_rank()}" if hosts.current else f"rank{process_rank()}"
    message = tag_text(f"{record.status}: {record.status_message or ''}".rstrip(": "))
    try:
        await backend.add_tags(record, {FAILURE_TAG + where: message})
    except Exception as exc:
        logger.error("sagerun: %s of run %s could not be recorded as a tag: %s", message, record.trial_component_name,
                     exc)
