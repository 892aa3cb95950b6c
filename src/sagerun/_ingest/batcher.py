"""Ingest · the inline drain: sends a run's queued points from this process through the delivery
core; in durable mode it journals them in the spool first; under the ``spill`` policy it writes
what the queue cannot hold to the run's journal file and sends it from there as room frees.

Points that fail for good go to the dead-letter hook, never nowhere.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Protocol, Sequence

import anyio
import anyio.abc
import anyio.to_thread

from .._model.answers import DeadLetter, refusal_reason
from .._model.points import Point
from .._model.session import Session
from .._model.sink import MetricsSink
from .dispatch import Batch, Dispatcher
from .drain import STILL_QUEUED, Drain
from .limiter import AdaptiveLimiter
from .overflow import Overflow
from .queue import PointQueue
from .stats import IngestStats

logger = logging.getLogger("sagerun")


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
#: seconds between looks at the queue while every slot is taken (the training thread cannot wake
#: the drain: at a million points a second this is 5,000 points, far below the spill mark)
_ROOM_POLL = 0.005


def adaptive_limiter(session: Session, sink: MetricsSink) -> AdaptiveLimiter:
    """The in-flight limiter of a run's drain: the session's bounds within the backend's."""
    cap = min(session.max_in_flight, sink.max_in_flight or session.max_in_flight)
    return AdaptiveLimiter(min(session.initial_in_flight, cap), cap)


class Batcher(Drain):
    """Drains one run's queue into ``backend.put_metrics``; use as ``async with``.

    Entering starts the drain task; leaving flushes within ``session.close_timeout`` and hands what
    could not be delivered by then to the dead-letter hook.
    """

    def __init__(self, queue: PointQueue, backend: MetricsSink, trial_component_name: str, session: Session,
                 dead_letter: DeadLetter, journal: Journal | None = None, *, overflow: Overflow | None = None,
                 report: bool = True, kept_in: str | None = None) -> None:
        super().__init__(queue, trial_component_name, session, dead_letter, report=report, kept_in=kept_in)
        self.journal = journal
        self.overflow = overflow
        """Under ``spill``: where points go once the queue is half full and every slot is taken."""
        self.fill = backend.max_batch
        self.chunk = backend.max_batch if journal is None else _JOURNAL_CHUNK
        self.linger = session.linger
        self.dispatcher = Dispatcher(backend, session, self, adaptive_limiter(session, backend))
        self._forget: list[int] = []
        self._last_forget = time.monotonic()
        self._ready: deque[Batch] = deque()  # journaled, waiting for a slot (durable mode)
        self._ready_event = anyio.Event()

    def closing(self, deadline: float) -> None:
        super().closing(deadline)
        self.dispatcher.close_by = deadline

    def stats(self) -> IngestStats:
        queue = self.queue
        sending = self.dispatcher
        # Read from any thread (the sync facade's ingest_stats) while the drain changes the set:
        # list() copies it in one step under the GIL, so the sums below see a consistent snapshot.
        batches = list(sending.batches)
        oldest = [b.oldest for b in batches]
        for head in (queue.oldest_timestamp(), self.overflow.oldest if self.overflow is not None else None):
            if head is not None:
                oldest.append(head)
        return IngestStats(
            enqueued=queue.removed + len(queue),
            delivered=sending.delivered,
            failed=sending.failed + self.dead_lettered,
            dropped=queue.dropped,
            rejected=queue.rejected,
            retried=sending.retried,
            resent_unanswered=sending.resent_unanswered,
            queued=len(queue) + (len(self.overflow) if self.overflow else 0),
            in_flight=sum(len(b.points) for b in batches),
            lag=max(0.0, time.time() - min(oldest)) if oldest else 0.0,
            in_flight_limit=sending.limiter.limit,
            send_rate=None if (rate := sending.limiter.pacer.rate) is None else round(rate, 1),
        )

    # -- the drain ---------------------------------------------------------------------------------

    async def _run(self, tasks: anyio.abc.TaskGroup) -> None:
        if self.journal is not None:
            tasks.start_soon(self._send_ready, tasks)
        if self.overflow is None:
            await self._loop(tasks)
            return
        tasks.start_soon(self._refill, tasks)
        await self._spilling_loop(tasks, self.overflow)

    async def _spilling_loop(self, tasks: anyio.abc.TaskGroup, overflow: Overflow) -> None:
        """The loop under ``spill``: points go to a free slot, else wait in the queue until it is half
        full, then the oldest go to the overflow, which is sent first as slots free up."""
        queue = self.queue
        while True:
            await self._linger()
            if not overflow and self.dispatcher.has_room():
                await self._handle(queue.take(self.chunk), tasks)
            elif (unkept := await overflow.relieve(queue)) is not None:
                await self._handle(unkept, tasks)
            else:
                await anyio.sleep(_ROOM_POLL)
            self._made_progress()

    async def _refill(self, tasks: anyio.abc.TaskGroup) -> None:
        """Send the overflow's points, oldest first, as slots free up."""
        assert self.overflow is not None
        name, size = self.trial_component_name, self.fill
        while True:
            points = await self.overflow.take()
            batches = [Batch(name, points[i:i + size]) for i in range(0, len(points), size)]
            self.dispatcher.expect(batches)
            for batch in batches:
                await self.dispatcher.send(batch, tasks)

    async def _handle(self, points: list[Point], tasks: anyio.abc.TaskGroup) -> None:
        if not points:
            return
        size = self.fill
        name = self.trial_component_name
        batches = [Batch(name, points[start:start + size]) for start in range(0, len(points), size)]
        self.dispatcher.expect(batches)  # before any wait, so that flush() waits for them
        if self.journal is None:
            for batch in batches:
                await self.dispatcher.send(batch, tasks)
            return
        # Journal now, send when there is a slot: a slow endpoint must not leave points unjournaled
        # in memory. Held points still count against the queue's capacity.
        self.queue.hold(len(points))
        await self._journal(batches, points)
        self._ready.extend(batches)
        self._ready_event.set()

    async def _settle(self) -> None:
        if self.overflow is not None:
            await self.overflow.emptied()
        await self.dispatcher.settled()

    async def _after(self) -> None:
        for batch in list(self.dispatcher.batches):  # taken, but cancelled while waiting for a slot
            self._dead_letter(batch.points, STILL_QUEUED, kept=batch.ids is not None)
        self.dispatcher.batches.clear()
        if self.journal is not None:
            await self._forget_delivered(self.journal, now=True)
        while self.overflow:  # what was spilled and not sent: to the dead letters, as the queue's rest
            self._dead_letter(await self.overflow.take(), STILL_QUEUED)

    async def _send_ready(self, tasks: anyio.abc.TaskGroup) -> None:
        while True:
            while not self._ready:
                await self._ready_event.wait()
                self._ready_event = anyio.Event()
            batch = self._ready.popleft()
            await self.dispatcher.send(batch, tasks)
            self.queue.release(len(batch.points))  # on its way: its room in the queue is free

    async def _journal(self, batches: list[Batch], points: list[Point]) -> None:
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
        await self._forget_delivered(self.journal)

    async def _forget_delivered(self, journal: Journal, *, now: bool = False) -> None:
        """Remove the delivered points from ``journal``, at most every ``_FORGET_INTERVAL`` unless ``now``."""
        if self._forget and (now or time.monotonic() - self._last_forget > _FORGET_INTERVAL):
            delivered, self._forget = self._forget, []
            self._last_forget = time.monotonic()
            await anyio.to_thread.run_sync(journal.forget, delivered)

    # -- the Outcome of the batches ------------------------------------------------------------

    async def delivered(self, batch: Batch, indexes: list[int]) -> None:
        if batch.ids is not None:
            ids = batch.ids
            self._forget.extend(ids[i] for i in indexes)

    async def refused(self, batch: Batch, indexes: list[int], code: str) -> None:
        points, ids = batch.part(indexes)
        self._dead_letter(points, refusal_reason(code), counted=True, kept=ids is not None)

    async def failed(self, batch: Batch, reason: str) -> None:
        self._dead_letter(batch.points, reason, counted=True, kept=batch.ids is not None)
