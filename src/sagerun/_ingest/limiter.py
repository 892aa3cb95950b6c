"""Ingest · an in-flight limit that adapts: additive increase while requests succeed, halving on throttling."""

from __future__ import annotations

import math
import time

import anyio


class AdaptiveLimiter:
    """AIMD over an ``anyio.CapacityLimiter`` whose total is moved within ``[minimum, maximum]``."""

    def __init__(self, initial: int, minimum: int, maximum: int) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self._limiter = anyio.CapacityLimiter(initial)
        self._successes = 0
        self._last_cut = 0.0

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

    def throttled(self) -> None:
        # Requests in flight when the first throttle arrives report it too; cut once per window.
        now = time.monotonic()
        if now - self._last_cut < 0.1:
            return
        self._last_cut = now
        self._successes = 0
        self._limiter.total_tokens = max(self.minimum, math.ceil(self.limit / 2))
