"""Ingest · the retry budget: how much an outage may multiply the traffic of a run's delivery.

Like the AWS SDKs' retry quota, in spirit: a retry spends a token (two after a timeout, which held
a connection that long) and each request the backend takes earns one, over a reserve. Under
partial failure traffic stays within about twice what is delivered; during an outage, once the
reserve is spent, retries wait and one goes each ``probe_interval`` to find out whether the
endpoint is back, and its first success earns the budget back. No point is dropped for want of
budget: a batch still ends at its deadline, in the dead-letter hook (the spool).

The SDKs' own numbers (retries cost 5, a success earns 1) would spend the budget within a few
hundred batches at the 50% failure rate a run must get through (issue 13), so these allow a retry
for every request taken.
"""

from __future__ import annotations

import math
import time

import anyio

#: tokens held in reserve at the start, and at most
RESERVE = 100
RETRY_COST = 1
TIMEOUT_RETRY_COST = 2


class RetryBudget:
    """Tokens for retries, shared by every batch of one dispatcher."""

    def __init__(self, probe_interval: float) -> None:
        self.probe_interval = probe_interval
        self.tokens = RESERVE
        self._earned = anyio.Event()
        self._last_probe = -math.inf

    async def spend(self, unanswered: bool) -> None:
        """Wait until a retry may go."""
        cost = TIMEOUT_RETRY_COST if unanswered else RETRY_COST
        while self.tokens < cost:
            wait = self._last_probe + self.probe_interval - time.monotonic()
            if wait <= 0:  # spent: a retry goes now and then, to see whether the endpoint is back
                self._last_probe = time.monotonic()
                return
            with anyio.move_on_after(wait):
                await self._earned.wait()
        self.tokens -= cost

    def earn(self) -> None:
        """The backend took a request."""
        if self.tokens < RESERVE:
            self.tokens += 1
            self._earned.set()
            self._earned = anyio.Event()
