"""The drain: takes points from the queue, sends batches with an adaptive number in flight, retries.

Points that fail for good go to the dead-letter hook, never nowhere.
"""

from __future__ import annotations

import logging
from collections import deque
import time
from typing import Callable, Protocol, Sequence

import anyio
import anyio.abc

from .._exceptions import TransportError
from .._session import Session
from ..backends.base import MetricsSink
from .limiter import AdaptiveLimiter
from .points import Point
from .queue import PointQueue
from .retry import retry_call
from .stats import IngestStats, LagWarning, report_close

logger = logging.getLogger("sagerun")

DeadLetter = Callable[[str, Sequence[Point], str], None]
"""Called with the trial component name, the points that failed for good, and why."""


class Journal(Protocol):
    """Durable mode: where points are written before they are sent (the local store's spool)."""

    def write(self, trial_component_name: str, points: Sequence[Point]) -> Sequence[int]:
        """Keep ``points``; return an id for each, in order (blocking: runs in a worker thread)."""

    def forget(self, ids: Sequence[int]) -> None:
        """Drop the points of ``ids``: they were delivered."""


#: points journaled at once in durable mode: one SQLite transaction for many requests
_JOURNAL_CHUNK = 2_000
#: seconds between removals of delivered points from the journal
_FORGET_INTERVAL = 0.2

#: per-item codes worth sending again; the rest are the caller's to fix and are reported
RETRYABLE_ITEM_CODES = frozenset({"INTERNAL_ERROR", "CONFLICT_ERROR"})
#: how the reason given to the dead-letter hook begins when the API refused the points for good
REFUSED = "refused by the backend: "


def refusal_code(reason: str) -> str | None:
    """The API's code when ``reason`` (given to a dead-letter hook) says the points were refused
    for good, so that sending them again as they are would be refused again; else ``None``."""
    return reason[len(REFUSED):] if reason.startswith(REFUSED) else None


class _Batch:
    __slots__ = ("points", "ids", "oldest", "done")

    def __init__(self, points: list[Point]) -> None:
        self.points = points
        self.ids: list[int] | None = None  # journal ids, parallel to points, in durable mode
        self.oldest = min(p[3] for p in points)
        self.done = anyio.Event()

    def keep(self, indexes: list[int]) -> None:
        """Keep only the points at ``indexes`` (those to send again)."""
        self.points = [self.points[i] for i in indexes]
        if self.ids is not None:
            self.ids = [self.ids[i] for i in indexes]


class Batcher:
    """Drains one run's queue into ``backend.put_metrics``; use as ``async with``.

    Entering starts the drain task; leaving flushes within ``session.close_timeout`` and hands what
    could not be delivered by then to the dead-letter hook.
    """

    def __init__(self, queue: PointQueue, backend: MetricsSink, trial_component_name: str, session: Session,
                 dead_letter: DeadLetter, journal: Journal | None = None, *, report: bool = True) -> None:
        self.queue = queue
        self.backend = backend
        self.trial_component_name = trial_component_name
        self.session = session
        self.dead_letter = dead_letter
        self.journal = journal
        self.report = report
        """Warn about lag, and at close about points not delivered (a sender process leaves both to
        its parent, which sees the whole run)."""
        self._forget: list[int] = []
        self._ready: deque[_Batch] = deque()  # journaled, waiting for a slot (durable mode)
        self._ready_event = anyio.Event()
        self._last_forget = time.monotonic()
        cap = min(session.max_in_flight, backend.max_in_flight or session.max_in_flight)
        self.limiter = AdaptiveLimiter(min(session.initial_in_flight, cap), min(session.min_in_flight, cap), cap)
        self.delivered = 0
        self.failed = 0
        self.retried = 0
        self.resent_unanswered = 0
        self._batches: set[_Batch] = set()
        self._wakeup = anyio.Event()
        self._progress = anyio.Event()
        self._flushing = 0
        self._closing = False
        self._lag = LagWarning(trial_component_name, session.lag_warning)
        self._task_group: anyio.abc.TaskGroup | None = None
        self._drain_scope = anyio.CancelScope()

    async def __aenter__(self) -> Batcher:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._drain_scope = await self._task_group.start(self._drain, name=f"sagerun drain {self.trial_component_name}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task_group is not None
        # Flush even when the caller is being cancelled; the shield is left before the task group
        # exits, since anyio scopes close in the order they were opened.
        with anyio.CancelScope(shield=True):
            self._closing = True
            self._wakeup.set()
            with anyio.move_on_after(self.session.close_timeout):
                await self.flush()
        self._drain_scope.cancel()
        try:
            await self._task_group.__aexit__(None, None, None)
        finally:
            for batch in self._batches:  # taken, but cancelled while waiting for a slot
                self._fail(batch.points, "still queued when the run closed", batch.ids is not None)
            self._batches.clear()
            leftover = self.queue.drain_all()
            if leftover:
                self._fail(leftover, "still queued when the run closed")
            if self.journal is not None and self._forget:
                await anyio.to_thread.run_sync(self.journal.forget, self._forget)
            if self.report:
                report_close(self.trial_component_name, self.stats())

    def stats(self) -> IngestStats:
        queue = self.queue
        # Read from any thread (the sync facade's ingest_stats) while the drain changes the set:
        # list() copies it in one step under the GIL, so the sums below see a consistent snapshot.
        batches = list(self._batches)
        in_flight = sum(len(b.points) for b in batches)
        oldest = [b.oldest for b in batches]
        head = queue.oldest_timestamp()
        if head is not None:
            oldest.append(head)
        return IngestStats(
            enqueued=queue.removed + len(queue),
            delivered=self.delivered,
            failed=self.failed,
            dropped=queue.dropped,
            rejected=queue.rejected,
            retried=self.retried,
            resent_unanswered=self.resent_unanswered,
            queued=len(queue),
            in_flight=in_flight,
            lag=max(0.0, time.time() - min(oldest)) if oldest else 0.0,
            in_flight_limit=self.limiter.limit,
        )

    async def flush(self) -> None:
        """Return once every point queued before the call is delivered or has failed for good."""
        target = self.queue.removed + len(self.queue)
        self._flushing += 1
        try:
            while self.queue.removed < target:
                self._wakeup.set()
                await self._progress.wait()
            for batch in list(self._batches):
                await batch.done.wait()
        finally:
            self._flushing -= 1

    async def _drain(self, *, task_status: anyio.abc.TaskStatus[anyio.CancelScope]) -> None:
        size = self.backend.max_batch
        queue = self.queue
        # Shielded: cancelling the caller's scope must not cut requests in flight; close() ends the
        # drain through this scope once the flush is done or its timeout has passed.
        with anyio.CancelScope(shield=True) as scope:
            task_status.started(scope)
            async with anyio.create_task_group() as senders:
                if self.journal is not None:
                    senders.start_soon(self._send_ready, senders)
                await self._drain_loop(senders, size, queue)

    async def _drain_loop(self, senders: anyio.abc.TaskGroup, size: int, queue: PointQueue) -> None:
        while True:
            waiting = len(queue)
            if not waiting or (waiting < size and not (self._flushing or self._closing)):
                with anyio.move_on_after(self.session.linger):
                    await self._wakeup.wait()
                self._wakeup = anyio.Event()
                if self.report:
                    self._lag.check(self.stats)
            points = queue.take(size if self.journal is None else _JOURNAL_CHUNK)
            self._progress.set()
            self._progress = anyio.Event()
            if not points:
                continue
            batches = [_Batch(points[start:start + size]) for start in range(0, len(points), size)]
            self._batches.update(batches)  # before any wait, so that flush() waits for them
            if self.journal is None:
                for batch in batches:
                    await self.limiter.acquire(batch)
                    senders.start_soon(self._send, batch)
            else:
                # Journal now, send when there is a slot: a slow endpoint must not leave points
                # unjournaled in memory. Held points still count against the queue's capacity.
                queue.hold(len(points))
                await self._journal(batches, points)
                self._ready.extend(batches)
                self._ready_event.set()

    async def _send_ready(self, senders: anyio.abc.TaskGroup) -> None:
        while True:
            while not self._ready:
                await self._ready_event.wait()
                self._ready_event = anyio.Event()
            batch = self._ready.popleft()
            await self.limiter.acquire(batch)
            self.queue.release(len(batch.points))
            senders.start_soon(self._send, batch)

    async def _journal(self, batches: list[_Batch], points: list[Point]) -> None:
        """Durable mode: keep the points in the journal before sending them, and drop delivered ones."""
        assert self.journal is not None
        try:
            ids = await anyio.to_thread.run_sync(self.journal.write, self.trial_component_name, points)
        except Exception:
            logger.exception("sagerun: durable mode could not journal %d points; they are sent unjournaled",
                             len(points))
        else:
            size = len(batches[0].points)
            for number, batch in enumerate(batches):
                batch.ids = list(ids[number * size:number * size + len(batch.points)])
        if self._forget and time.monotonic() - self._last_forget > _FORGET_INTERVAL:
            delivered, self._forget = self._forget, []
            self._last_forget = time.monotonic()
            await anyio.to_thread.run_sync(self.journal.forget, delivered)

    async def _send(self, batch: _Batch) -> None:
        try:
            await retry_call(self.session, lambda: self._attempt(batch), on_retry=self._count_retry)
        except TransportError as exc:
            self._fail(batch.points, str(exc), batch.ids is not None)
        except anyio.get_cancelled_exc_class():
            self._fail(batch.points, "in flight when the run closed", batch.ids is not None)
            raise
        except Exception as exc:  # a backend bug must not stop the drain or lose the points
            logger.exception("sagerun: unexpected error sending metrics")
            self._fail(batch.points, f"unexpected error: {exc!r}", batch.ids is not None)
        finally:
            self.limiter.release(batch)
            self._batches.discard(batch)
            batch.done.set()

    async def _attempt(self, batch: _Batch) -> None:
        points = batch.points
        try:
            # Each backend enforces session.request_timeout itself (an anyio deadline here would
            # cost 26 µs a request); a timeout comes back as an unanswered TransportError.
            errors = await self.backend.put_metrics(self.trial_component_name, points)
        except TransportError as exc:
            if exc.throttled:
                self.limiter.throttled()
            if exc.unanswered:
                self.resent_unanswered += len(points)
            raise
        self.limiter.succeeded()
        codes = {e.index: e.code for e in errors}
        self.delivered += len(points) - len(codes)
        if batch.ids is not None:
            self._forget.extend(batch.ids[i] for i in range(len(points)) if i not in codes)
        for code in sorted(set(codes.values()) - RETRYABLE_ITEM_CODES):
            refused = [points[i] for i, c in codes.items() if c == code]
            self._fail(refused, REFUSED + code, batch.ids is not None)
        batch.keep([i for i, c in sorted(codes.items()) if c in RETRYABLE_ITEM_CODES])
        if batch.points:
            raise TransportError(f"{len(batch.points)} points came back with a transient item error", retryable=True)

    def _count_retry(self, error: TransportError) -> None:
        self.retried += 1
        logger.debug("sagerun: retrying a metrics request: %s", error)

    def _fail(self, points: Sequence[Point], reason: str, journaled: bool = False) -> None:
        if not points:
            return
        self.failed += len(points)
        if journaled:  # already kept where the dead-letter hook would put them
            logger.warning("sagerun: %d points of %s could not be delivered (%s); kept in the spool for "
                           "`sagerun sync`", len(points), self.trial_component_name, reason)
            return
        try:
            self.dead_letter(self.trial_component_name, points, reason)
        except Exception:
            logger.exception("sagerun: the dead-letter hook failed; %d points are lost", len(points))
