"""Ingest · a send rate that follows throttling: a token bucket whose rate a cut sets just below
what the backend took, and which then climbs back along a CUBIC curve (RFC 8312), flat near the
rate that was last throttled and steeper away from it.

It is off until the first cut: a run that is never throttled is never paced. botocore's adaptive
retry mode paces the same way, but its limiter sleeps the calling thread and cuts on every
throttled answer; here the wait is a task's and the caller decides when a cut is due (the
limiter's windows), since a burst of throttled answers to one overshoot is one signal, not many,
and a cut that did not lower the throttling can be taken back (``undo``).
Unlike TCP's CUBIC, the time to climb back is fixed (``RECOVERY``), not grown with the rate:
at 500 requests a second the RFC's constant would take seven seconds to return.
"""

from __future__ import annotations

import time

import anyio

#: the share of the rate taken that a cut keeps: what a quota took is what it takes, so the cut
#: need only go below it, not halve it
BETA = 0.85
#: seconds from a cut until the rate is back at what was taken before it
RECOVERY = 2.0
#: requests a second the rate is never cut below
MIN_RATE = 1.0
#: seconds of the rate the bucket holds: a burst of a few requests, not of a second's worth
BURST = 0.02


class SendPacer:
    """Waits before each request so that they go at most ``rate`` a second, once cut."""

    def __init__(self) -> None:
        self.rate: float | None = None  # None: not paced
        self._ceiling = 0.0  # the rate taken when last cut
        self._cut_at = 0.0
        self._before: tuple[float | None, float, float] = (None, 0.0, 0.0)
        self._tokens = 1.0
        self._stamp = time.monotonic()
        self._lock = anyio.Lock()  # waiters go in turn, in the order they came

    async def wait(self) -> None:
        """Return when the next request may go."""
        if self.rate is None:
            return
        async with self._lock:
            while (rate := self.rate) is not None:
                now = time.monotonic()
                self._tokens = min(max(1.0, rate * BURST), self._tokens + (now - self._stamp) * rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await anyio.sleep((1 - self._tokens) / rate)

    def cut(self, taken: float) -> None:
        """The backend throttled while taking ``taken`` requests a second: go below that."""
        self._before = (self.rate, self._ceiling, self._cut_at)
        self._ceiling = max(taken, MIN_RATE)
        self._cut_at = time.monotonic()
        self.rate = max(BETA * self._ceiling, MIN_RATE)

    def undo(self) -> None:
        """The last cut did not lower the throttling: go back to the curve it left."""
        self.rate, self._ceiling, self._cut_at = self._before
        self.grow()

    def grow(self) -> None:
        """Move the rate along the curve, never past twice the last ceiling (a quiet run must not
        come back to a rate it never tried)."""
        if self.rate is None:
            return
        shape = (time.monotonic() - self._cut_at) / RECOVERY - 1
        self.rate = min(2 * self._ceiling, self._ceiling * (1 + (1 - BETA) * shape**3))
