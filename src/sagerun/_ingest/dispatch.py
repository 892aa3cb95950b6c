"""Ingest · the delivery core: batches sent with an adaptive number in flight, retried, and each
answer read by the one rule (``read_answer``).

It serves the run's drain (inline or in the sender process) and ``sagerun sync``. What becomes of
the points is its owner's: the ``Outcome`` it is given hears, per batch, which points were
delivered, which were refused for good and with what code, and which failed for good and why.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol, Sequence

import anyio
import anyio.abc

from .._model.answers import read_answer
from .._model.errors import TransportError
from .._model.points import Point
from .._model.retry import Backoff
from .._model.session import Session
from .._model.sink import MetricsSink
from .budget import RetryBudget
from .limiter import AdaptiveLimiter

logger = logging.getLogger("sagerun")

#: the most of the time left to a closing run that one wait between retries may take: at a 50%
#: failure rate the last batches of a run fail several times in a row, and the failures-in-a-row
#: backoff would otherwise have them wait seconds while the close runs out
CLOSING_SHARE = 0.25
#: why points in flight are given up when their sender is cancelled (the run closing)
CANCELLED = "in flight when the run closed"
#: batches on their way (sent, or waiting to be sent again) per in-flight slot at most
OUTSTANDING_PER_SLOT = 4


class Batch:
    """Points of one trial component sent in one request, with the ids their owner knows them by
    (journal or spool rows; ``None`` when they are only in memory)."""

    __slots__ = ("trial_component_name", "points", "ids", "oldest", "done")

    def __init__(self, trial_component_name: str, points: list[Point], ids: list[int] | None = None) -> None:
        self.trial_component_name = trial_component_name
        self.points = points
        self.ids = ids
        self.oldest = min(p[3] for p in points)
        self.done = anyio.Event()

    def part(self, indexes: Sequence[int]) -> tuple[list[Point], list[int] | None]:
        """The points (and ids) at ``indexes``."""
        points = self.points
        ids = self.ids
        return [points[i] for i in indexes], None if ids is None else [ids[i] for i in indexes]


class Outcome(Protocol):
    """What the owner of the batches does as each one settles; called on the dispatcher's loop."""

    async def delivered(self, batch: Batch, indexes: list[int]) -> None:
        """The points at ``indexes`` were taken by the backend."""

    async def refused(self, batch: Batch, indexes: list[int], code: str) -> None:
        """The backend refused the points at ``indexes`` for good with ``code``."""

    async def failed(self, batch: Batch, reason: str) -> None:
        """The batch's remaining points could not be delivered: retries ran out, the request was
        refused as a whole, or the sender was cancelled (``reason`` is then ``CANCELLED``)."""


class Dispatcher:
    """Sends ``Batch``es through ``sink`` under ``session``'s retry policy, at most ``limiter.limit``
    requests at once, and tells ``outcome`` what became of each point.

    A batch holds an in-flight slot only while its request is out: between attempts it waits its
    backoff, then for the retry budget, without one, so a few failing batches never stall the rest.
    The backoff grows with the failures in a row across all batches (``Backoff.next(streak)``):
    while the endpoint takes other requests, a failed one goes again soon, and the budget, not
    the backoff, bounds the extra traffic.
    At most ``OUTSTANDING_PER_SLOT`` batches per slot of the limit's maximum are on their way at
    once, sent or waiting to be sent again, which bounds the points held here (``send`` waits).
    """

    def __init__(self, sink: MetricsSink, session: Session, outcome: Outcome, limiter: AdaptiveLimiter) -> None:
        self.sink = sink
        self.session = session
        self.outcome = outcome
        self.limiter = limiter
        self.budget = RetryBudget(session.retry_max_backoff)
        self.close_by: float | None = None
        """When the run closing must be done (``time.monotonic()``); set by the drain at close."""
        self.batches: set[Batch] = set()
        """Batches given to ``send`` and not yet settled (read from any thread by ``stats``)."""
        self._room = anyio.CapacityLimiter(OUTSTANDING_PER_SLOT * limiter.maximum)
        self.delivered = 0
        self.failed = 0
        self.retried = 0
        self.resent_unanswered = 0
        self._streak = 0  # answers in a row that were failures

    def expect(self, batches: Sequence[Batch]) -> None:
        """Count ``batches`` as on their way before waiting for room, so that ``settled`` waits for them."""
        self.batches.update(batches)

    def has_room(self) -> bool:
        """Whether ``send`` would start a batch at once."""
        return self._room.available_tokens >= 1

    async def send(self, batch: Batch, senders: anyio.abc.TaskGroup) -> None:
        """Wait for room, then send ``batch`` in a task of ``senders`` (started, not yet run, on return)."""
        self.batches.add(batch)
        await self._room.acquire_on_behalf_of(batch)
        senders.start_soon(self._send, batch)

    async def settled(self) -> None:
        """Return once every batch given so far has settled."""
        for batch in list(self.batches):
            await batch.done.wait()

    async def _send(self, batch: Batch) -> None:
        backoff = Backoff(self.session)
        try:
            while (error := await self._attempt(batch)) is not None:
                cap = None if self.close_by is None else (self.close_by - time.monotonic()) * CLOSING_SHARE
                delay = backoff.next(self._streak, cap)
                if delay is None:
                    raise error
                self._count_retry(error)
                await anyio.sleep(delay)
                await self.budget.spend(error.unanswered)
        except TransportError as exc:
            await self._fail(batch, str(exc))
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._fail(batch, CANCELLED)
            raise
        except Exception as exc:  # a backend bug must not stop the drain or lose the points
            logger.exception("sagerun: unexpected error sending metrics")
            await self._fail(batch, f"unexpected error: {exc!r}")
        finally:
            self._room.release_on_behalf_of(batch)
            self.batches.discard(batch)
            batch.done.set()

    async def _attempt(self, batch: Batch) -> TransportError | None:
        """Send the batch once, holding a slot; settle what the answer settles. Returns the error to
        retry on (``None``: nothing is left to send).

        Raises:
            TransportError: the request was refused as a whole, for good.
        """
        points = batch.points
        await self.limiter.acquire(batch)
        try:
            # Each backend enforces session.request_timeout itself (an anyio deadline here would
            # cost 26 µs a request); a timeout comes back as an unanswered TransportError.
            errors = await self.sink.put_metrics(batch.trial_component_name, points)
        except TransportError as exc:
            self._streak += 1
            if exc.throttled:
                self.limiter.throttled()
            elif not exc.unanswered:
                self.limiter.errored()
            if exc.unanswered:
                self.resent_unanswered += len(points)
            if not exc.retryable:
                raise
            return exc
        finally:
            self.limiter.release(batch)
        self._streak = 0
        self.limiter.succeeded()
        self.budget.earn()
        if not errors:
            self.delivered += len(points)
            await self.outcome.delivered(batch, list(range(len(points))))
            return None
        answer = read_answer(len(points), errors)
        self.delivered += len(answer.delivered)
        if answer.delivered:
            await self.outcome.delivered(batch, answer.delivered)
        for code, indexes in sorted(answer.refused.items()):
            self.failed += len(indexes)
            await self.outcome.refused(batch, indexes, code)
        if not answer.again:
            return None
        batch.points, batch.ids = batch.part(answer.again)
        return TransportError(f"{len(batch.points)} points came back with a transient item error", retryable=True)

    async def _fail(self, batch: Batch, reason: str) -> None:
        self.failed += len(batch.points)
        await self.outcome.failed(batch, reason)

    def _count_retry(self, error: TransportError) -> None:
        self.retried += 1
        logger.debug("sagerun: retrying a metrics request: %s", error)
