"""Delivery of the spool to SageMaker, and of runs logged to the local store (``sagerun sync``).

Delivery is at least once: a point leaves the spool only after SageMaker has taken it, so an
interrupted sync sends again, next time, at most the requests that were in flight. Points refused
for good item by item are set aside with their code; a request that fails as a whole stops the
sync with the points kept.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from typing import Callable, Protocol, Sequence

import anyio
import anyio.to_thread
import botocore.exceptions

from .._artifacts.publish import publish_local_artifacts
from .._exceptions import SagerunError, TransportError
from .._ingest.batcher import RETRYABLE_ITEM_CODES
from .._ingest.points import Point
from .._ingest.retry import retry_call
from .._session import Session
from ..backends.base import Backend
from . import records
from .db import opened, transaction
from .queries import RunInfo, find_run, list_runs, read_metrics
from .spool import Spool, SpoolBatch

logger = logging.getLogger("sagerun")

_READ_AHEAD = 2000  # points taken from the spool per round: 200 requests to spread over the senders
_PUSH_REASON = "pushed from the local store"

Progress = Callable[[int], None]


class SyncError(SagerunError):
    """SageMaker could not be reached at all (no region or endpoint could be resolved, for instance)."""


@dataclasses.dataclass
class SyncReport:
    """What one sync did. ``error`` is set when it stopped early; ``pending`` points are then left."""

    delivered: int = 0
    refused: dict[str, int] = dataclasses.field(default_factory=dict)
    """points set aside by this sync, by refusal code"""
    pending: int = 0
    set_aside: dict[str, int] = dataclasses.field(default_factory=dict)
    """every point set aside in the spool after this sync, by code"""
    pushed: dict[str, int] = dataclasses.field(default_factory=dict)
    """local runs sent to SageMaker (``experiment/run``) and how many of their points were spooled"""
    saved: list[str] = dataclasses.field(default_factory=list)
    """SageMaker runs whose final status and parameters could not be saved when they closed, saved now"""
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class SyncProgress(Protocol):
    """What ``sync_store`` tells of its progress: the points to deliver, then each settled lot."""

    def start(self, total: int) -> None: ...

    def advance(self, settled: int) -> None: ...


async def sync_store(session: Session, *, runs: Sequence[str] = (), all_local: bool = False,
                     retry_refused: bool = False, concurrency: int = 8,
                     progress: SyncProgress | None = None) -> SyncReport:
    """Deliver the spool of ``session.store_path`` to SageMaker; first push the local runs named in
    ``runs`` (``experiment/run`` or a run name), or every local run with ``all_local``, and make the
    points set aside pending again with ``retry_refused``.

    Returns the report; its ``error`` says why delivery stopped early, if it did.

    Raises:
        NoStoreError: there is no local store.
        RunNotFoundError, AmbiguousRunError: a name in ``runs`` does not name exactly one local run.
        SyncError: SageMaker could not be reached (no region, no credentials).
        BackendError: a local run could not be created or saved in SageMaker.
    """
    from ..backends.sagemaker import SageMakerBackend  # aioboto3 is only imported when syncing

    store_path = session.store_path
    with Spool(store_path, create=False) as spool:
        local = await anyio.to_thread.run_sync(_local_runs, store_path, list(runs), all_local)
        if retry_refused:
            await anyio.to_thread.run_sync(spool.release_refused)
        unsaved = await anyio.to_thread.run_sync(_unsaved, store_path)
        if not local and not unsaved and not await anyio.to_thread.run_sync(spool.count):
            # Nothing to send: no need for credentials or a connection to say so.
            return SyncReport(set_aside=await anyio.to_thread.run_sync(spool.refused))
        try:
            async with SageMakerBackend(session) as backend:
                saved = [await save_unsaved(backend, store_path, run_id, record) for run_id, record in unsaved]
                pushed = {run.ref: await push_run(backend, session, store_path, run) for run in local}
                if progress is not None:
                    progress.start(await anyio.to_thread.run_sync(spool.count))
                report = await deliver(backend, spool, session, concurrency=concurrency,
                                       progress=progress.advance if progress is not None else None)
        except botocore.exceptions.BotoCoreError as exc:
            raise SyncError(f"could not reach SageMaker: {exc}") from exc
    report.pushed = pushed
    report.saved = saved
    return report


def _unsaved(store_path: str) -> list[tuple[int, records.RunRecord]]:
    with opened(store_path) as conn:
        return records.unsaved_runs(conn)


async def save_unsaved(backend: Backend, store_path: str, run_id: int, record: records.RunRecord) -> str:
    """Save to SageMaker the final state of a run that could not be saved when it closed; return
    its ``experiment/run``.

    Raises:
        BackendError: it could not be saved (it stays kept for the next sync).
    """
    await backend.save_run(record)

    def forget() -> None:
        with opened(store_path) as conn:
            records.forget_unsaved(conn, run_id)

    await anyio.to_thread.run_sync(forget)
    return f"{record.experiment_name}/{record.run_name}"


def _local_runs(store_path: str, refs: list[str], all_local: bool) -> list[RunInfo]:
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


def _load_record(store_path: str, run_id: int) -> records.RunRecord:
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


async def deliver(backend: Backend, spool: Spool, session: Session, *, concurrency: int = 8,
                  progress: Progress | None = None) -> SyncReport:
    """Send every pending point of ``spool`` through ``backend``, ``backend.max_batch`` per request and
    ``concurrency`` requests in flight, retrying under ``session``'s policy; remove what was delivered
    and set aside what was refused. ``progress`` is called with the number of points settled.

    Returns the report; its ``error`` says why delivery stopped early, if it did.

    Raises:
        ValueError: ``concurrency`` is not a positive integer.
    """
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer; got {concurrency!r}")
    delivery = _Delivery(backend, spool, session, concurrency, progress or (lambda n: None))
    await delivery.run()
    report = delivery.report
    report.pending = await anyio.to_thread.run_sync(spool.count)
    report.set_aside = await anyio.to_thread.run_sync(spool.refused)
    return report


class _Delivery:
    def __init__(self, backend: Backend, spool: Spool, session: Session, concurrency: int,
                 progress: Progress) -> None:
        self.backend = backend
        self.spool = spool
        self.session = session
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.progress = progress
        self.report = SyncReport()

    async def run(self) -> None:
        size = self.backend.max_batch
        while self.report.error is None:
            batches = await anyio.to_thread.run_sync(self.spool.pending, _READ_AHEAD)
            if not batches:
                return
            batches = await self._set_aside_malformed(batches)
            async with anyio.create_task_group() as senders:
                for batch in batches:
                    for start in range(0, len(batch.ids), size):
                        senders.start_soon(self._send, senders, batch.trial_component_name,
                                           batch.ids[start:start + size], batch.points[start:start + size])

    async def _set_aside_malformed(self, batches: list[SpoolBatch]) -> list[SpoolBatch]:
        """Set aside (never delete) rows no sagerun could have written: the spool is a file anyone can
        edit or damage, and one such row in a request makes the API refuse the whole request, which
        would stop every later sync at the same row. Found by tests/test_bad_input.py."""
        kept: list[SpoolBatch] = []
        malformed: list[int] = []
        for batch in batches:
            good = []
            for row_id, point in zip(batch.ids, batch.points):
                if _well_formed(batch.trial_component_name, point):
                    good.append((row_id, point))
                else:
                    malformed.append(row_id)
            if good:
                kept.append(SpoolBatch(batch.trial_component_name, [i for i, _ in good], [p for _, p in good]))
        if malformed:
            await anyio.to_thread.run_sync(self.spool.mark_refused, malformed, MALFORMED)
            self.report.refused[MALFORMED] = self.report.refused.get(MALFORMED, 0) + len(malformed)
            logger.warning("sagerun: %d points in the spool are malformed (not as sagerun writes them); set aside "
                           "with code %s, not sent", len(malformed), MALFORMED)
        return kept

    async def _send(self, senders: anyio.abc.TaskGroup, trial_component_name: str, ids: list[int],
                    points: list[Point]) -> None:
        left = (ids, points)

        async def attempt() -> None:
            nonlocal left
            try:
                await self._attempt(trial_component_name, *left)
            except _Again as again:
                left = (again.ids, again.points)
                raise

        async with self.limiter:
            try:
                await retry_call(self.session, attempt)
            except Exception as exc:  # retries exhausted, refused as a whole, or no credentials: stop
                if self.report.error is None:
                    self.report.error = f"{trial_component_name}: {exc}"
                    logger.debug("sagerun: sync stopped", exc_info=True)
                senders.cancel_scope.cancel()

    async def _attempt(self, trial_component_name: str, ids: list[int], points: list[Point]) -> None:
        """One request; settles what it can and raises a retryable error for what is left."""
        try:
            with anyio.fail_after(self.session.request_timeout):
                errors = await self.backend.put_metrics(trial_component_name, points)
        except TimeoutError:
            raise TransportError(f"no answer within request_timeout={self.session.request_timeout}s",
                                 retryable=True, unanswered=True) from None
        codes = {e.index: e.code for e in errors}
        await anyio.to_thread.run_sync(self.spool.remove, [i for n, i in enumerate(ids) if n not in codes])
        refused: dict[str, list[int]] = {}
        for n, code in codes.items():
            if code not in RETRYABLE_ITEM_CODES:
                refused.setdefault(code, []).append(ids[n])
        for code, refused_ids in refused.items():
            await anyio.to_thread.run_sync(self.spool.mark_refused, refused_ids, code)
            self.report.refused[code] = self.report.refused.get(code, 0) + len(refused_ids)
            logger.info("sagerun: %d points of %s refused by SageMaker (%s), set aside in the spool",
                        len(refused_ids), trial_component_name, code)
        again = sorted(n for n, code in codes.items() if code in RETRYABLE_ITEM_CODES)
        settled = len(ids) - len(again)
        self.report.delivered += len(ids) - len(codes)
        self.progress(settled)
        if again:
            raise _Again([ids[n] for n in again], [points[n] for n in again])


MALFORMED = "MALFORMED_ROW"
"""The code under which spool rows that cannot be a valid point are set aside."""
_TRIAL_COMPONENT = re.compile(r"[a-z0-9](-*[a-z0-9]){0,119}")
_MAX_STEP = 2**31 - 1


def _well_formed(trial_component_name: object, point: Point) -> bool:
    """Whether a spool row can be sent as BatchPutMetrics takes it (the checks sagerun makes at the call)."""
    name, value, step, timestamp = point
    return (isinstance(trial_component_name, str) and _TRIAL_COMPONENT.fullmatch(trial_component_name) is not None
            and isinstance(name, str) and 0 < len(name) <= 255 and name.isprintable()
            and type(value) in (int, float) and math.isfinite(value)
            and (step is None or (type(step) is int and 0 <= step <= _MAX_STEP))
            and type(timestamp) in (int, float) and math.isfinite(timestamp))


class _Again(TransportError):
    """Some items came back with a transient code: retry those only."""

    def __init__(self, ids: Sequence[int], points: Sequence[Point]) -> None:
        super().__init__(f"{len(ids)} points came back with a transient item error", retryable=True)
        self.ids = list(ids)
        self.points = list(points)
