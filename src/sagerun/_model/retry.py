"""Model · the one retry policy: exponential backoff with full jitter, bounded by a deadline.

Written here rather than taken from tenacity: measured on this machine, an ``AsyncRetrying`` loop
costs 84 µs a call even when the first attempt succeeds, a fifth of the CPU of a whole metrics
request; this loop costs nothing until something fails. botocore's own retries are switched off
for every client sagerun makes, so the two never multiply.
"""

from __future__ import annotations

import random
import time
from typing import Awaitable, Callable, TypeVar

import anyio

from .errors import TransportError
from .session import Session

T = TypeVar("T")


class Backoff:
    """The waits between the attempts of one call: the wait before retry *n* is uniform in
    ``[0, min(retry_max_backoff, retry_initial * 2**n)]`` (AWS's "full jitter"), and none is given
    that would end past the deadline (``session.retry_deadline`` unless given).

    ``next(streak)`` grows the wait no further than ``streak`` doublings: a sender of many requests
    passes how many answers in a row have failed, so that one batch unlucky at a 50% failure rate
    does not wait seconds while the endpoint takes every other request.
    """

    def __init__(self, session: Session, deadline: float | None = None) -> None:
        self.session = session
        self.limit = session.retry_deadline if deadline is None else deadline
        self.started = time.monotonic()
        self.attempt = 0

    def next(self, streak: int | None = None, cap: float | None = None) -> float | None:
        """The wait before the next attempt, or ``None``: the deadline would pass first. ``cap``
        bounds the wait further (a closing run's share of the time it has left)."""
        session = self.session
        doublings = self.attempt if streak is None else min(self.attempt, streak)
        bound = min(session.retry_max_backoff, session.retry_initial * 2**doublings)
        delay = random.uniform(0, bound if cap is None else max(0.0, min(bound, cap)))
        if time.monotonic() - self.started + delay > self.limit:
            return None
        self.attempt += 1
        return delay


async def retry_call(session: Session, call: Callable[[], Awaitable[T]], *,
                     on_retry: Callable[[TransportError], object] | None = None,
                     deadline: float | None = None) -> T:
    """Await ``call()`` until it returns, raises anything but a retryable ``TransportError``, or
    the next wait would end past the deadline (then the last error is raised); waits as ``Backoff``.
    """
    backoff = Backoff(session, deadline)
    while True:
        try:
            return await call()
        except TransportError as exc:
            if not exc.retryable:
                raise
            delay = backoff.next()
            if delay is None:
                raise
            if on_retry is not None:
                on_retry(exc)
            await anyio.sleep(delay)
