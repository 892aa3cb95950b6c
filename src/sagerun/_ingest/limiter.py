"""Ingest · how fast requests go: an in-flight limit that grows while requests succeed, and a send
rate (``SendPacer``) that is cut when throttling rises above what slowing down leaves of it.

Throttling that follows the rate (an account's quota) falls when the rate is cut; throttling that
does not (an overloaded endpoint refusing a share of everything) stays. Which one it was shows
in the first window of answers to requests sent after a cut: if the share throttled is still more
than ``CUT_EFFECT`` of what it was, the cut is taken back and that share is learned as background.
Only a share above the background cuts: otherwise the rate would fall window after window under
throttling it cannot change. The background is forgotten slowly in windows below it, so that
throttling which was background once does not hide a quota later. A window is at least
``MIN_WINDOW`` answers, and a full limit's worth.

The rate, not the in-flight limit, is what throttling moves: at 20 ms a request, one slot is 50
requests a second, so a limit cannot settle between 50 and 100 and a quota of 50 would see half
its requests throttled (measured in docs/performance.md).
"""

from __future__ import annotations

import math
import time

import anyio

from .pacer import SendPacer


#: answers in the shortest window the throttled share is read over
MIN_WINDOW = 16
#: seconds of the shortest window: shorter, the rate taken in it is mostly chance
MIN_SECONDS = 0.2
#: how far above the background the throttled share must be to cut, at the least
MARGIN = 0.03
#: a cut after which more than this share of its throttling remains did not cause it
CUT_EFFECT = 0.5


class AdaptiveLimiter:
    """Requests in flight up to ``maximum``, from ``initial`` and one more per limit's worth of
    successes, each sent when the pacer lets it."""

    def __init__(self, initial: int, maximum: int) -> None:
        self.maximum = maximum
        self.pacer = SendPacer()
        self._limiter = anyio.CapacityLimiter(initial)
        self._successes = 0
        self._answers = 0
        self._throttles = 0
        self._background = 0.0
        self._judging = False  # whether the window is the one after a cut
        self._stale = 0  # answers still due to requests sent before the last cut
        self._cut_share = 0.0
        self._window_start = time.monotonic()

    @property
    def limit(self) -> int:
        return int(self._limiter.total_tokens)

    @property
    def in_flight(self) -> int:
        return self._limiter.borrowed_tokens

    async def acquire(self, token: object) -> None:
        # The slot first: a request let through by the pacer before a cut must not go after it.
        await self._limiter.acquire_on_behalf_of(token)
        try:
            await self.pacer.wait()
        except BaseException:
            self._limiter.release_on_behalf_of(token)
            raise

    def release(self, token: object) -> None:
        self._limiter.release_on_behalf_of(token)

    def succeeded(self) -> None:
        # One more slot per full window of successes: linear growth per round trip, as TCP does,
        # and only while the slots are all taken (a limit the pacer or the queue keeps from being
        # used says nothing about the backend: RFC 7661).
        limit = self.limit
        self._successes += self.in_flight >= limit - 1
        if self._successes >= limit and limit < self.maximum:
            self._successes = 0
            self._limiter.total_tokens = limit + 1
        self.pacer.grow()
        self._answered(throttled=False)

    def throttled(self) -> None:
        self._answered(throttled=True)

    def errored(self) -> None:
        """An answer that was an error other than throttling: the backend took the request."""
        self._answered(throttled=False)

    def _answered(self, throttled: bool) -> None:
        if self._stale:
            self._stale -= 1
            if not self._stale:
                self._answers = self._throttles = 0
            return
        if not self._answers:
            # From the first answer on: a window must not count the time before sending began, or
            # an idle spell, as time the backend took nothing in.
            self._window_start = time.monotonic()
        self._answers += 1
        self._throttles += throttled
        answers = self._answers
        now = time.monotonic()
        if answers < max(self.limit, MIN_WINDOW) or now - self._window_start < MIN_SECONDS:
            return
        share = self._throttles / answers
        # What the backend took a second, errors included: under a quota, the quota. The window
        # spans the gaps between its answers, one fewer than them.
        taken = (answers - 1) * (1 - share) / (now - self._window_start)
        self._answers = self._throttles = 0
        self._window_start = now
        if self._judging:
            self._judging = False
            if share > CUT_EFFECT * self._cut_share:
                self.pacer.undo()
                self._background = 0.5 * (self._background + share)
                return
        elif share < self._background:
            self._background = 0.9 * self._background + 0.1 * share
        spread = 2 * math.sqrt(self._background * (1 - self._background) / answers)
        if share > self._background + max(MARGIN, spread):
            self.pacer.cut(taken)
            self._judging, self._cut_share, self._stale = True, share, self.in_flight
