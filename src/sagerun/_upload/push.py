"""Upload · runs of the local store pushed to SageMaker: created there with their files, their
points put in the spool for delivery; and final states that could not be saved at close, saved now.
"""

from __future__ import annotations

import time

import anyio
import anyio.to_thread

from .._artifacts.publish import publish_local_artifacts
from .._model.session import Session
from .._model.records import RunRecord
from ..backends.base import Backend
from ..store import records
from ..store.db import opened, transaction
from ..store.queries import RunInfo, find_run, list_runs, read_metrics

_PUSH_REASON = "pushed from the local store"


def unsaved_runs(store_path: str) -> list[tuple[int, RunRecord]]:
    """The runs whose final state could not be saved when they closed, with their ids in the store."""
    with opened(store_path) as conn:
        return records.unsaved_runs(conn)


async def save_unsaved(backend: Backend, store_path: str, run_id: int, record: RunRecord) -> str:
    """Save to SageMaker the final state of a run that could not be saved when it closed; return
    its ``experiment/run``.

    Raises:
        BackendError: it could not be saved (it stays kept for the next `sagerun sync`).
    """
    await backend.save_run(record)

    def forget() -> None:
        with opened(store_path) as conn:
            records.forget_unsaved(conn, run_id)

    await anyio.to_thread.run_sync(forget)
    return f"{record.experiment_name}/{record.run_name}"


def local_runs(store_path: str, refs: list[str], all_local: bool) -> list[RunInfo]:
    """The local runs named by ``refs`` (``experiment/run`` or a run name), or all with ``all_local``."""
    with opened(store_path) as conn:
        if all_local:
            return list_runs(conn)
        return list({run.id: run for run in (find_run(conn, ref) for ref in refs)}.values())


async def push_run(backend: Backend, session: Session, store_path: str, run: RunInfo) -> int:
    """Create (or update) local run ``run`` in SageMaker through ``backend``, with its files uploaded
    to S3, then put its points not pushed before into the spool for ``deliver``; return how many.

    Each point is spooled once: the run remembers the last block it pushed, in the same transaction.

    Raises:
        BackendError: the run could not be created or saved in SageMaker.
        sqlite3.Error: the local store could not be read or written.
    """
    record = await anyio.to_thread.run_sync(_load_record, store_path, run.id)
    record = await backend.open_run(record)  # what SageMaker has fills in; the local run's own win
    record = await publish_local_artifacts(session, record, store_path)
    await backend.save_run(record)
    return await anyio.to_thread.run_sync(_spool_run, store_path, run.id, run.trial_component_name)


def _load_record(store_path: str, run_id: int) -> RunRecord:
    with opened(store_path) as conn:
        return records.load_run(conn, run_id)


def _spool_run(store_path: str, run_id: int, trial_component_name: str) -> int:
    with opened(store_path) as conn, transaction(conn):
        through = conn.execute("SELECT pushed_through FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        last = conn.execute("SELECT coalesce(max(m.id), 0) FROM metrics m JOIN series s ON s.id = m.series_id "
                            "WHERE s.run_id = ?", (run_id,)).fetchone()[0]
        if last <= through:
            return 0
        count, now = 0, time.time()
        for series in read_metrics(conn, run_id, after=through, through=last):
            conn.executemany(
                "INSERT INTO spool (trial_component_name, name, value, step, timestamp, reason, added_time) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((trial_component_name, name, value, step, timestamp, _PUSH_REASON, now)
                 for name, value, step, timestamp in series.points()))
            count += len(series.values)
        conn.execute("UPDATE runs SET pushed_through = ? WHERE id = ?", (last, run_id))
        return count


