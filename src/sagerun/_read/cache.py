"""Read · reads of a remote API kept for a while, and made one at a time.

SageMaker throttles Search (sagemaker-python-sdk issue #2293), and the CLI, the UI and a notebook
ask again and again: the same question within ``seconds`` costs one round of calls, and a burst
of questions is sent one request at a time instead of driving a busy account into throttling.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Hashable

import anyio


class Cache:
    """Answers by key, each kept ``seconds``; one read at a time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._kept: dict[Hashable, tuple[float, Any]] = {}
        self._one_at_a_time = anyio.Lock()

    async def get(self, key: Hashable, read: Callable[[], Awaitable[Any]]) -> Any:
        """The answer kept for ``key``, or ``await read()`` (kept from then)."""
        async with self._one_at_a_time:
            hit = self._kept.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.seconds:
                return hit[1]
            value = await read()
            self._kept[key] = (time.monotonic(), value)
            return value
