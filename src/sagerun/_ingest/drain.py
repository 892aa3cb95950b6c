"""Ingest · the drain loop: takes a run's queued points in a shielded task, lingering for more,
and closes by flushing within ``close_timeout``.

One loop serves both drains: ``Batcher`` (sends from this process) and ``Forwarder`` (hands the
points to the run's sender process). A subclass says what to do with the points it takes
(``_handle``), how to wait for them to settle (``_settle``), and what closing adds (``_finish``).
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any

import anyio
import anyio.abc

from .._model.answers import DeadLetter, refusal_code
from .._model.points import Point
from .._model.session import Session
from .queue import PointQueue
from .stats import IngestStats, LagWarning, report_close

logger = logging.getLogger("sagerun")

#: why points still queued at close are handed to the dead-letter hook
STILL_QUEUED = "still queued when the run closed"


class Drain:
    """Empties ``queue`` while entered (``async with``); ``flush()``, ``stats()``.

    The loop waits up to ``linger`` seconds for ``fill`` points (not while flushing or closing),
    then takes up to ``chunk``. Leaving flushes within ``session.close_timeout``, even when the
    caller is cancelled, and hands what is still queued to the dead-letter hook.
    """

    fill: int = 1
    chunk: int = 1
    linger: float = 0.0

    def __init__(self, queue: PointQueue, trial_component_name: str, session: Session,
                 dead_letter: DeadLetter, *, report: bool = True, kept_in: str | None = None) -> None:
        self.queue = queue
        self.trial_component_name = trial_component_name
        self.session = session
        self.dead_letter = dead_letter
        self.report = report
        """Warn about lag, and at close about points not delivered (a sender process leaves both to
        its parent, which sees the whole run)."""
        self.close_by: float | None = None
        """When the run's close must end (``time.monotonic()``), once it has begun (``closing``)."""
        self.kept_in = kept_in
        """The store whose spool keeps the dead letters (the default hook's), for the close summary."""
        self.dead_lettered = 0
        """Points this drain handed to the dead-letter hook itself (counted as failed)."""
        self.handed: collections.Counter[str] = collections.Counter()
        """Points the dead-letter hook took, by refusal code ("" for undelivered)."""
        self._wakeup = anyio.Event()
        self._progress = anyio.Event()
        self._flushing = 0
        self._closing = False
        self._lag = LagWarning(trial_component_name, session.lag_warning)
        self._task_group: anyio.abc.TaskGroup | None = None
        self._scope = anyio.CancelScope()

    # -- what a drain adds ---------------------------------------------------------------------------

    async def _run(self, tasks: anyio.abc.TaskGroup) -> None:
        """The body of the shielded task: by default, the loop."""
        await self._loop(tasks)

    async def _handle(self, points: list[Point], tasks: anyio.abc.TaskGroup) -> None:
        """Do what this drain does with ``points`` (possibly none: a linger passed)."""
        raise NotImplementedError

    def _taking(self) -> bool:
        """Whether the loop still takes points (a forwarder whose sender died stops)."""
        return True

    async def _settle(self) -> None:
        """Return once every point taken so far has settled."""

    async def _finish(self, deadline: float) -> None:
        """Closing, once flushed (or out of time), still shielded: ``deadline`` is the close's."""

    async def _after(self) -> None:
        """Closing, once the loop has ended: release what the drain holds."""

    def stats(self) -> IngestStats:
        raise NotImplementedError

    def _handed(self) -> collections.Counter[str]:
        """What the dead-letter hook took, by code, for the close summary."""
        return self.handed

    # -- the loop --------------------------------------------------------------------------------

    async def __aenter__(self) -> Any:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._scope = await self._task_group.start(self._shielded, name=f"sagerun drain {self.trial_component_name}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task_group is not None
        # Flush even when the caller is being cancelled; the shield is left before the task group
        # exits, since anyio scopes close in the order they were opened.
        with anyio.CancelScope(shield=True):
            self._closing = True
            self._wakeup.set()
            deadline = time.monotonic() + self.session.close_timeout
            self.closing(deadline)
            with anyio.move_on_after(self.session.close_timeout):
                await self.flush()
            await self._finish(deadline)
        self._scope.cancel()
        try:
            await self._task_group.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True):
                await self._after()
                self._dead_letter(self.queue.drain_all(), STILL_QUEUED)
            if self.report:
                report_close(self.trial_component_name, self.stats(), self._handed(), self.kept_in)

    def closing(self, deadline: float) -> None:
        """The run's close has begun and must end by ``deadline`` (``time.monotonic()``): a drain
        that retries waits less from now on."""
        self.close_by = deadline

    async def flush(self) -> None:
        """Return once every point queued before the call is delivered or has failed for good."""
        target = self.queue.removed + len(self.queue)
        self._flushing += 1
        try:
            while self.queue.removed < target and self._taking():
                self._wakeup.set()
                await self._progress.wait()
            await self._settle()
        finally:
            self._flushing -= 1

    async def _shielded(self, *, task_status: anyio.abc.TaskStatus[anyio.CancelScope]) -> None:
        # Cancelling the caller's scope must not cut requests in flight; leaving the drain ends
        # this task through its scope once the flush is done or its timeout has passed.
        with anyio.CancelScope(shield=True) as scope:
            task_status.started(scope)
            async with anyio.create_task_group() as tasks:
                await self._run(tasks)

    async def _loop(self, tasks: anyio.abc.TaskGroup) -> None:
        queue = self.queue
        while self._taking():
            await self._linger()
            await self._handle(queue.take(self.chunk), tasks)
            self._made_progress()

    async def _linger(self) -> None:
        """Wait for ``fill`` points, a wake-up or ``linger`` seconds, unless flushing or closing."""
        waiting = len(self.queue)
        if not waiting or (waiting < self.fill and not (self._flushing or self._closing)):
            with anyio.move_on_after(self.linger):
                await self._wakeup.wait()
            self._wakeup = anyio.Event()
            if self.report:
                self._lag.check(self.stats)

    def _made_progress(self) -> None:
        self._progress.set()
        self._progress = anyio.Event()

    def _dead_letter(self, points: list[Point], reason: str, *, counted: bool = False, kept: bool = False) -> None:
        """Hand ``points`` to the hook; ``counted``: already counted as failed where they failed;
        ``kept``: already where the hook would put them (durable mode's journal), only counted."""
        if not points:
            return
        if not counted:
            self.dead_lettered += len(points)
        if not kept:
            try:
                self.dead_letter(self.trial_component_name, points, reason)
            except Exception:
                logger.exception("sagerun: the dead-letter hook failed; %d points are lost", len(points))
                return
        self.handed[refusal_code(reason) or ""] += len(points)
