"""Ingest · an in-flight limit that adapts: additive increase while requests succeed, halving when
throttling rises above what slowing down leaves of it.

Throttling that follows the rate (an account's quota) falls when the limit is cut; throttling that
does not (an overloaded endpoint refusing a share of everything) stays. Which one it was shows
after a cut (in the second window: the first still answers requests sent before): under a quota
the backend takes as many requests a second as before, otherwise it takes fewer, and the share
still throttled then is background. Only a share above the background cuts again: otherwise AIMD
halves the limit window after window under throttling it cannot change. A window is at least
``MIN_WINDOW`` answers, and a full limit's worth.
"""

from __future__ import annotations

import math
import time

import anyio


#: answers in the shortest window the throttled share is read over
MIN_WINDOW = 16
#: how far above the background the throttled share must be to cut, at the least
MARGIN = 0.03
#: a cut after which the backend takes less than this share of what it took before was no use
CUT_COST = 0.75


class AdaptiveLimiter:
    """AIMD over an ``anyio.CapacityLimiter`` whose total is moved within ``[minimum, maximum]``."""

    def __init__(self, initial: int, minimum: int, maximum: int) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self._limiter = anyio.CapacityLimiter(initial)
        self._successes = 0
        self._answers = 0
        self._throttles = 0
        self._background = 0.0
        self._after_cut = 0  # windows left to read after a cut
        self._cut_taken = 0.0
        self._window_start = time.monotonic()

    @property
    def limit(self) -> int:
        return int(self._limiter.total_tokens)

    @property
    def in_flight(self) -> int:
        return self._limiter.borrowed_tokens

    async def acquire(self, token: object) -> None:
        await self._limiter.acquire_on_behalf_of(token)

    def release(self, token: object) -> None:
        self._limiter.release_on_behalf_of(token)

    def succeeded(self) -> None:
        # One more slot per full window of successes: linear growth per round trip, as TCP does.
        self._successes += 1
        limit = self.limit
        if self._successes >= limit and limit < self.maximum:
            self._successes = 0
            self._limiter.total_tokens = limit + 1
        self._answered(throttled=False)

    def throttled(self) -> None:
        self._answered(throttled=True)

    def _answered(self, throttled: bool) -> None:
        self._answers += 1
        self._throttles += throttled
        answers = self._answers
        if answers < max(self.limit, MIN_WINDOW):
            return
        share = self._throttles / answers
        now = time.monotonic()
        taken = (answers - self._throttles) / max(now - self._window_start, 1e-6)  # answers taken a second
        self._answers = self._throttles = 0
        self._window_start = now
        if self._after_cut:
            # The first window after a cut still answers requests sent before it: it is skipped.
            # Throttling the cut did not lower in the next one is throttling the rate does not cause.
            self._after_cut -= 1
            if self._after_cut:
                return
            # Under a quota the backend takes as much after a cut as before; under throttling
            # that does not follow the rate, a cut only loses what it took away.
            if taken < CUT_COST * self._cut_taken:
                self._background = 0.5 * (self._background + share)
        spread = 2 * math.sqrt(self._background * (1 - self._background) / answers)
        if share > self._background + max(MARGIN, spread):
            self._successes = 0
            self._limiter.total_tokens = max(self.minimum, math.ceil(self.limit / 2))
            self._after_cut, self._cut_taken = 2, taken
