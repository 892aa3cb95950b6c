"""Backends · the local store as a backend: runs and their points in one SQLite file, no AWS needed.

SQLite calls block, so each one runs in a worker thread; a ``CapacityLimiter(1)`` makes the single
connection's calls one at a time (SQLite has one writer anyway) and in the order they were made.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import sqlite3
import time
from typing import Any, Callable, Sequence, TypeVar

import anyio
import anyio.to_thread

from .._model.errors import BackendError, TransportError
from .._model.points import Point
from .._model.session import Session
from ..store import db, models, queries, records
from ..store.metrics import MetricWriter
from .base import Backend
from .._model.answers import ItemError
from .._model.records import RunRecord
from .._model.registry import ModelRequest, ModelVersion

T = TypeVar("T")


class LocalBackend(Backend):
    """Runs and metrics in ``<session.store_path>/sagerun.db``; use as ``async with``."""

    # No API limit here. Big batches mean few hand-offs to the writer thread, each of which may wait
    # for the GIL while the training loop runs; 20,000 points are ~2 MB of tuples.
    max_batch = 20_000
    max_in_flight = 1  # one SQLite writer: more batches in flight would only queue for the lock

    def __init__(self, session: Session) -> None:
        self.session = session
        self.store_path = session.store_path
        self._conn: sqlite3.Connection | None = None
        self._writer: MetricWriter | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._run_ids: dict[str, int] = {}

    async def __aenter__(self) -> LocalBackend:
        self._limiter = anyio.CapacityLimiter(1)
        try:
            self._conn = await self._thread(db.connect, self.store_path)
        except (sqlite3.Error, OSError) as exc:
            raise BackendError(f"could not open the local store in {self.store_path}: {exc}. Check that the "
                               "folder is writable, or choose another with Session(store=...) or SAGERUN_HOME") from exc
        self._writer = MetricWriter(self._conn)
        return self

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with anyio.CancelScope(shield=True):
                await self._thread(conn.close)

    async def _thread(self, call: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(call, *args), limiter=self._limiter)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the local backend is not open: use it as 'async with LocalBackend(session)'")
        return self._conn

    async def add_tags(self, record: RunRecord, tags: dict[str, str]) -> None:
        try:
            await self._thread(records.add_tags, self._connection(), self._run_id(record.trial_component_name), tags)
        except sqlite3.Error as exc:
            raise BackendError(f"could not tag run {record.trial_component_name!r} in {self.store_path}: "
                               f"{exc}") from exc

    async def delivered_steps(self, record: RunRecord) -> dict[str, int]:
        from ..store.search import highest_steps

        run_id = self._run_ids.get(record.trial_component_name)
        if run_id is None:
            return {}
        return await self._thread(highest_steps, self._connection(), run_id)

    async def open_run(self, record: RunRecord) -> RunRecord:
        try:
            run_id, merged = await self._thread(records.open_run, self._connection(), record)
        except sqlite3.Error as exc:
            raise BackendError(f"could not load or create run {record.run_name!r} of experiment "
                               f"{record.experiment_name!r} in the local store {self.store_path}: {exc}") from exc
        self._run_ids[record.trial_component_name] = run_id
        return merged

    async def save_run(self, record: RunRecord) -> None:
        run_id = self._run_id(record.trial_component_name)
        try:
            await self._thread(records.save_run, self._connection(), run_id, record)
        except sqlite3.Error as exc:
            raise BackendError(f"could not save run {record.trial_component_name!r} (status {record.status}) "
                               f"in the local store {self.store_path}: {exc}") from exc

    async def put_metrics(self, trial_component_name: str, points: Sequence[Point]) -> Sequence[ItemError]:
        run_id = self._run_id(trial_component_name)
        assert self._writer is not None
        try:
            await self._thread(self._writer.insert, run_id, points)
        except sqlite3.OperationalError as exc:
            # Locked or busy past the timeout, or a full disk: worth another attempt.
            raise TransportError(f"local store {self.store_path}: {exc}", retryable=True) from exc
        except sqlite3.Error as exc:
            raise TransportError(f"local store {self.store_path}: {exc}", retryable=False) from exc
        return []

    def _run_id(self, trial_component_name: str) -> int:
        try:
            return self._run_ids[trial_component_name]
        except KeyError:
            raise BackendError(f"run {trial_component_name!r} was not opened on this backend: "
                               "call open_run(record) first") from None

    # -- finding runs and experiments again (load_run, list_runs, Experiment) -----------------------

    async def register_model(self, record: RunRecord, request: ModelRequest, model_data: str) -> ModelVersion:
        try:
            return await self._thread(models.add_model, self._connection(), request, model_data,
                                      record.trial_component_name)
        except sqlite3.Error as exc:
            raise BackendError(f"could not register model {request.group!r} in the local store {self.store_path}: "
                               f"{exc}") from exc

    async def list_runs(self, experiment_name: str, *, created_after: datetime.datetime | None = None,
                        created_before: datetime.datetime | None = None, sort_by: str = "CreationTime",
                        sort_order: str = "Descending", max_results: int | None = None,
                        where: Callable[[RunRecord], bool] | None = None) -> list[RunRecord]:
        after = None if created_after is None else created_after.timestamp()  # naive means local time
        before = None if created_before is None else created_before.timestamp()

        def read(conn: sqlite3.Connection) -> list[RunRecord]:
            try:
                found = queries.list_runs(conn, experiment_name)
            except queries.RunNotFoundError:
                return []  # as SageMaker: an experiment that does not exist has no runs
            found = [run for run in found if (after is None or run.created_time > after)
                     and (before is None or run.created_time < before)]
            found.sort(key=(lambda run: run.name) if sort_by == "Name" else (lambda run: (run.created_time, run.id)),
                       reverse=sort_order == "Descending")
            loaded = (records.load_run(conn, run.id) for run in found)
            return list(itertools.islice((r for r in loaded if where is None or where(r)), max_results))

        try:
            return await self._thread(read, self._connection())
        except sqlite3.Error as exc:
            raise BackendError(f"could not list the runs of {experiment_name!r} in the local store "
                               f"{self.store_path}: {exc}") from exc

    async def describe_experiment(self, experiment_name: str) -> dict[str, object] | None:
        def read(conn: sqlite3.Connection) -> dict[str, object] | None:
            row = conn.execute("SELECT name, display_name, created_time FROM experiments WHERE name = ?",
                               (experiment_name,)).fetchone()
            if row is None:
                return None
            created = datetime.datetime.fromtimestamp(row[2], datetime.timezone.utc)
            return {"ExperimentName": row[0], "DisplayName": row[1] or row[0], "CreationTime": created,
                    "LastModifiedTime": created}

        try:
            return await self._thread(read, self._connection())
        except sqlite3.Error as exc:
            raise BackendError(f"could not read experiment {experiment_name!r} in the local store: {exc}") from exc

    async def create_experiment(self, experiment_name: str, display_name: str | None = None,
                                description: str | None = None,
                                tags: list[dict[str, str]] | None = None) -> dict[str, object]:
        def create(conn: sqlite3.Connection) -> None:
            with db.transaction(conn):
                if conn.execute("SELECT 1 FROM experiments WHERE name = ?", (experiment_name,)).fetchone():
                    raise BackendError(f"experiment {experiment_name!r} exists already: load it with "
                                       "Experiment.load(...)")
                conn.execute("INSERT INTO experiments (name, display_name, created_time) VALUES (?, ?, ?)",
                             (experiment_name, display_name, time.time()))

        try:
            await self._thread(create, self._connection())
        except sqlite3.Error as exc:
            raise BackendError(f"could not create experiment {experiment_name!r} in the local store: {exc}") from exc
        described = await self.describe_experiment(experiment_name)
        assert described is not None
        return described
