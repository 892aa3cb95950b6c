"""Ingest · the overflow of a drain: points beyond the queue's room (the ``spill`` policy) written
to the run's journal file in a worker thread, and read back, oldest first, when there is room: in
the inline drain as slots free, in a forwarder once its sender process is ready.
"""

from __future__ import annotations

from collections import deque
from typing import Sequence

import logging

import anyio
import anyio.to_thread

from .._model.points import Point
from ..store.journal import FrameJournal, frame_points
from .queue import PointQueue

logger = logging.getLogger("sagerun")


def spill_marks(capacity: int) -> tuple[int, int]:
    """The queue length from which its oldest points go to disk (half its capacity), and the length
    they are taken down to (a quarter), so that each write takes many points."""
    return max(capacity // 2, 1), capacity // 4


class Overflow:
    """What ``journal`` holds for one drain, counted; used from one event loop."""

    def __init__(self, journal: FrameJournal) -> None:
        self.journal = journal
        self._frames: deque[tuple[int, float]] = deque()  # points and first timestamp of each frame
        self._count = 0
        self._kept = anyio.Event()
        self._emptied = anyio.Event()
        self._emptied.set()

    def __bool__(self) -> bool:
        return self._count > 0

    def __len__(self) -> int:
        """Points kept and not yet taken back."""
        return self._count

    @property
    def oldest(self) -> float | None:
        """The timestamp of the oldest point kept, ``None`` when there is none."""
        frames = self._frames
        return frames[0][1] if frames else None

    async def keep(self, points: Sequence[Point]) -> None:
        """Write ``points`` behind those kept before.

        Raises:
            OSError: they could not be written; nothing of them is kept.
        """
        await anyio.to_thread.run_sync(self.journal.write, points)
        if not self._count:
            self._emptied = anyio.Event()
        self._frames.append((len(points), points[0][3]))
        self._count += len(points)
        self._kept.set()

    async def relieve(self, queue: PointQueue) -> list[Point] | None:
        """If ``queue`` is at least half full, keep its oldest points, down to a quarter.

        Returns ``None`` when it was not; else the points taken that could not be written (the disk
        is full or gone; the error is logged), for the caller to send from memory: none when all were.
        """
        high, low = spill_marks(queue.capacity)
        if len(queue) < high:
            return None
        points = queue.take(len(queue) - low)
        try:
            await self.keep(points)
        except OSError:
            logger.exception("sagerun: %d points could not be spilled to disk; they are sent from memory",
                             len(points))
            return points
        return []

    async def take(self) -> list[Point]:
        """Wait until points are kept, then read back the oldest write of them."""
        return frame_points((await self.take_frame())[0])

    async def take_frame(self) -> tuple[bytes, int, float]:
        """``take``, undecoded: the frame (as the sender channel carries points), its number of
        points and the timestamp of its first."""
        while not self._frames:
            await self._kept.wait()
            self._kept = anyio.Event()
        frame = await anyio.to_thread.run_sync(self.journal.read_frame)
        count, oldest = self._frames.popleft()
        self._count -= count
        if not self._count:
            self._emptied.set()
        return frame, count, oldest

    async def emptied(self) -> None:
        """Return once every point kept so far has been taken back."""
        await self._emptied.wait()
