"""Upload · the spool delivered through the ingest layer's delivery core (``sagerun sync``).

Delivery is at least once: a point leaves the spool only after the backend has taken it, so an
interrupted upload sends again, next time, at most the requests that were in flight. Points refused
for good item by item are set aside with their code; a request that fails as a whole stops the
delivery with the points kept.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from typing import Callable

import anyio
import anyio.to_thread

from .._ingest.dispatch import Batch, Dispatcher
from .._ingest.limiter import AdaptiveLimiter
from .._model.checks import MAX_STEP
from .._model.points import Point
from .._model.session import Session
from ..backends.base import Backend
from ..store.spool import Spool, SpoolBatch

logger = logging.getLogger("sagerun")

_READ_AHEAD = 2000  # points taken from the spool per round: 200 requests to spread over the senders

Progress = Callable[[int], None]


@dataclasses.dataclass
class UploadReport:
    """What one upload did. ``error`` is set when it stopped early; ``pending`` points are then left."""

    delivered: int = 0
    refused: dict[str, int] = dataclasses.field(default_factory=dict)
    """points set aside by this upload, by refusal code"""
    pending: int = 0
    set_aside: dict[str, int] = dataclasses.field(default_factory=dict)
    """every point set aside in the spool after this upload, by code"""
    pushed: dict[str, int] = dataclasses.field(default_factory=dict)
    """local runs sent to SageMaker (``experiment/run``) and how many of their points were spooled"""
    saved: list[str] = dataclasses.field(default_factory=list)
    """SageMaker runs whose final status and parameters could not be saved when they closed, saved now"""
    fetched: int = 0
    """points taken into the spool from files kept beyond a SageMaker job (``--from``)"""
    recovered: int = 0
    """points taken into the spool from the journal files of runs whose process was killed"""
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


async def deliver(backend: Backend, spool: Spool, session: Session, *, concurrency: int = 8,
                  progress: Progress | None = None) -> UploadReport:
    """Send every pending point of ``spool`` through ``backend``, ``backend.max_batch`` per request and
    ``concurrency`` requests in flight, retrying under ``session``'s policy; remove what was delivered
    and set aside what was refused. ``progress`` is called with the number of points settled.

    Returns the report; its ``error`` says why delivery stopped early, if it did.

    Raises:
        ValueError: ``concurrency`` is not a positive integer.
    """
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer; got {concurrency!r}")
    outcome = _SpoolOutcome(spool, progress or (lambda n: None))
    size = backend.max_batch
    while outcome.report.error is None:
        batches = await anyio.to_thread.run_sync(spool.pending, _READ_AHEAD)
        if not batches:
            break
        batches = await outcome.set_aside_malformed(batches)
        async with anyio.create_task_group() as senders:
            outcome.stop = senders.cancel_scope.cancel
            dispatcher = Dispatcher(backend, session, outcome, AdaptiveLimiter(concurrency, concurrency))
            for lot in batches:
                for start in range(0, len(lot.ids), size):
                    await dispatcher.send(Batch(lot.trial_component_name, lot.points[start:start + size],
                                                lot.ids[start:start + size]), senders)
    report = outcome.report
    report.pending = await anyio.to_thread.run_sync(spool.count)
    report.set_aside = await anyio.to_thread.run_sync(spool.refused)
    return report


class _SpoolOutcome:
    """What becomes of spooled points as their batches settle (the delivery core's ``Outcome``)."""

    def __init__(self, spool: Spool, progress: Progress) -> None:
        self.spool = spool
        self.progress = progress
        self.report = UploadReport()
        self.stop: Callable[[], None] = lambda: None

    async def delivered(self, batch: Batch, indexes: list[int]) -> None:
        _, ids = batch.part(indexes)
        await anyio.to_thread.run_sync(self.spool.remove, ids)
        self.report.delivered += len(indexes)
        self.progress(len(indexes))

    async def refused(self, batch: Batch, indexes: list[int], code: str) -> None:
        _, ids = batch.part(indexes)
        assert ids is not None
        await anyio.to_thread.run_sync(self.spool.mark_refused, ids, code)
        self.report.refused[code] = self.report.refused.get(code, 0) + len(ids)
        self.progress(len(ids))
        logger.info("sagerun: %d points of %s refused by SageMaker (%s), set aside in the spool",
                    len(ids), batch.trial_component_name, code)

    async def failed(self, batch: Batch, reason: str) -> None:
        # Retries ran out, or the request was refused as a whole: stop, the points stay pending.
        if self.report.error is None:
            self.report.error = f"{batch.trial_component_name}: {reason}"
            logger.debug("sagerun: upload stopped: %s", self.report.error)
        self.stop()

    async def set_aside_malformed(self, batches: list[SpoolBatch]) -> list[SpoolBatch]:
        """Set aside (never delete) rows no sagerun could have written: the spool is a file anyone can
        edit or damage, and one such row in a request makes the API refuse the whole request, which
        would stop every later `sagerun sync` at the same row. Found by tests/test_bad_input.py."""
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


MALFORMED = "MALFORMED_ROW"
"""The code under which spool rows that cannot be a valid point are set aside."""
_TRIAL_COMPONENT = re.compile(r"[a-z0-9](-*[a-z0-9]){0,119}")


def _well_formed(trial_component_name: object, point: Point) -> bool:
    """Whether a spool row can be sent as BatchPutMetrics takes it (the checks sagerun makes at the call)."""
    name, value, step, timestamp = point
    return (isinstance(trial_component_name, str) and _TRIAL_COMPONENT.fullmatch(trial_component_name) is not None
            and isinstance(name, str) and 0 < len(name) <= 255 and name.isprintable()
            and type(value) in (int, float) and math.isfinite(value)
            and (step is None or (type(step) is int and 0 <= step <= MAX_STEP))
            and type(timestamp) in (int, float) and math.isfinite(timestamp))
