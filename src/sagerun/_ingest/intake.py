"""Ingest · the caller's side of metric logging: each point checked, stamped and queued, with no I/O.

The sync facade calls ``log_metric`` and ``log_metrics`` straight from the caller's thread, so
that logging a metric never waits for another thread (only the ``"block"`` policy on a full queue
waits); the async ``Run`` makes its points with ``point`` and ``items`` and awaits room itself.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from typing import Any, Callable, Mapping

import numpy as np

from .._model.checks import (
    MAX_STEP, check_metric_name, check_step, epoch_seconds, metric_steps, metric_timestamps, metric_value,
    metric_values,
)
from .._model.points import Block, Point
from .queue import Item, PointQueue

logger = logging.getLogger("sagerun")


class MetricIntake:
    """Checks metric points at the call and puts them in ``queue``; thread-safe as the queue is.

    Raises (every log call):
        TypeError, ValueError: a bad name, value, step or timestamp (the message names it).
        RunStateError: the run refuses points (``refuse``): closed, or opened in a parent process.
        QueueFullError: the queue is full and the policy is ``"raise"``.
    """

    def __init__(self, queue: PointQueue) -> None:
        self.queue = queue
        self._names: set[str] = set()
        self._nonfinite_warned: set[str] = set()
        self._refusal: Callable[[], Exception] | None = None
        self._resumed: dict[str, int] | None = None
        self._skipped = 0
        self._skipping = threading.Lock()

    def refuse(self, error: Callable[[], Exception]) -> None:
        """From now on every log call raises ``error()``."""
        self._refusal = error

    def skip_through(self, highs: Mapping[str, int]) -> None:
        """From now on a point of a metric of ``highs`` at or below its step there is skipped and
        counted: a resumed run has it already."""
        self._resumed = dict(highs) or None

    @property
    def skipped(self) -> int:
        """Points skipped so far by ``skip_through``."""
        return self._skipped

    def _skip(self, count: int) -> None:
        with self._skipping:
            self._skipped += count

    # -- the calls ---------------------------------------------------------------------------------

    def log_metric(self, name: str, value: float, *, step: int | None = None,
                   timestamp: datetime.datetime | float | None = None) -> None:
        """Queue one metric point from the caller's thread; no I/O happens here (``Run.log_metric``).

        The timestamp is taken now unless given; NaN and infinities are counted in
        ``ingest_stats.rejected``, not sent. On a full queue the session's ``full_policy`` applies;
        only ``"block"`` waits.
        """
        point = self.point(name, value, step, timestamp)
        if point is not None and not self.queue.offer(point):
            self.queue.put(point)

    def log_metrics(self, metrics: Mapping[str, Any], *, step: Any = None, timestamp: Any = None) -> None:
        """Queue many points at once from numbers or numpy arrays, from the caller's thread
        (``Run.log_metrics``); all are checked before any is queued."""
        self.queue.put_items(self.items(metrics, step, timestamp))

    def log_list(self, name: str, values: Any) -> None:
        """Queue a whole vector at steps 0 to n-1, from the caller's thread (``Run.log_list``)."""
        self.queue.put_items(self.list_items(name, values))

    # -- checking and making points --------------------------------------------------------------

    def list_items(self, name: str, values: Any) -> list[Item]:
        """The checked points of ``log_list``: ``values`` at steps 0 to n-1, as one block."""
        if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
            raise TypeError(f"metric {name!r}: values must be a list or a 1-d array of numbers; "
                            f"got {type(values).__name__}")
        array = metric_values(name, values)
        if not len(array):
            raise ValueError(f"metric {name!r}: values is empty: there is nothing to log")
        return self.items({name: array}, np.arange(len(array)), None)


    def point(self, name: str, value: object, step: object, timestamp: object) -> Point | None:
        """Check one point at the caller; ``None`` for a value SageMaker cannot take (counted)."""
        if self._refusal is not None:
            raise self._refusal()
        if name not in self._names:
            self._names.add(check_metric_name(name))
        if type(value) is not float:
            value = metric_value(value)
        if value - value != 0.0:  # type: ignore[operator]  # NaN or infinite
            self._reject(name, value, 1)
            return None
        if step is not None and (type(step) is not int or not 0 <= step <= MAX_STEP):  # type: ignore[operator]
            step = check_step(step)
        if self._resumed is not None and step is not None and step <= self._resumed.get(name, -1):  # type: ignore
            self._skip(1)
            return None
        return (name, value, step, time.time() if timestamp is None else epoch_seconds(timestamp))  # type: ignore[return-value]

    def items(self, metrics: Mapping[str, Any], step: Any, timestamp: Any) -> list[Item]:
        """The checked points of ``log_metrics``: a number at one step becomes a point as
        ``log_metric`` makes it (an array per number would cost ten times more), arrays blocks."""
        if self._refusal is not None:
            raise self._refusal()
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics must be a mapping of names to values or arrays; got {type(metrics).__name__}")
        one_step = step is None or type(step) is int
        steps = None if one_step else metric_steps(step)
        now = time.time() if timestamp is None else None
        blocks: list[Item] = []
        for name, raw in metrics.items():
            if one_step and (type(raw) is float or type(raw) is int):
                point = self.point(name, raw, step, timestamp)
                if point is not None:
                    blocks.append(point)
                continue
            if steps is None and step is not None:
                steps = metric_steps(step)
            if name not in self._names:
                self._names.add(check_metric_name(name))
            values = metric_values(name, raw)
            length = len(values)
            block_steps = steps
            if steps is not None and len(steps) != length:
                if len(steps) != 1:
                    raise ValueError(f"step has {len(steps)} entries but metric {name!r} has {length} values")
                block_steps = np.repeat(steps, length)
            times: np.ndarray | float = now if now is not None else metric_timestamps(timestamp, length)
            finite = np.isfinite(values)
            if not finite.all():
                self._reject(name, values[~finite][0], int((~finite).sum()))
                values = values[finite]
                block_steps = None if block_steps is None else block_steps[finite]
                if not isinstance(times, float):
                    times = times[finite]
            if self._resumed is not None and block_steps is not None and name in self._resumed:
                fresh = block_steps > self._resumed[name]
                if not fresh.all():
                    self._skip(int((~fresh).sum()))
                    values, block_steps = values[fresh], block_steps[fresh]
                    times = times if isinstance(times, float) else times[fresh]
            if len(values):
                blocks.append(Block(name, values, block_steps, times))
        return blocks

    def _reject(self, name: str, value: object, count: int) -> None:
        self.queue.reject(count)
        if name not in self._nonfinite_warned:
            self._nonfinite_warned.add(name)
            logger.warning("sagerun: metric %r got %r, which SageMaker cannot store; such values are counted "
                           "in run.ingest_stats.rejected and not sent (warned once per metric)", name, value)
