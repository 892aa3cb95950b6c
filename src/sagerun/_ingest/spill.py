"""Ingest · the sender process's spill: under the ``spill`` policy, hand-overs beyond what its queue
holds go to the run's journal file as they came over the socket, undecoded, and are fed back to
the queue, oldest first, as it empties.

The parent frees a point's room once it is handed over, so it is this process that bounds its own
memory, and it must accept hand-overs as fast as the training loop logs: a frame written as it came
costs one ``pwrite``, nothing per point.
"""

from __future__ import annotations

from typing import Iterator

import anyio

from .._model.points import Point
from ..store.journal import POINTS_PREFIX, FrameJournal
from .overflow import spill_marks
from .queue import PointQueue

#: seconds between looks at the queue while the journal holds frames
_POLL = 0.005


class Spill:
    """Frames of points kept in ``journal`` while ``queue`` is more than half full, or while earlier
    frames wait there (order is kept); ``feed`` moves them back once it is below a quarter (the
    marks of ``spill_marks``)."""

    def __init__(self, queue: PointQueue, journal: FrameJournal) -> None:
        self.queue = queue
        self.journal = journal
        self._high, self._low = spill_marks(queue.capacity)

    def keeps(self, payload: bytes) -> bool:
        """Keep the received ``payload`` in the journal if it is a frame of points that the queue
        should not take now; whether it was kept.

        Raises:
            OSError: the journal cannot be written (the disk is full).
        """
        if not payload.startswith(POINTS_PREFIX) or not (self.journal or len(self.queue) >= self._high):
            return False
        self.journal.append(payload)
        return True

    async def feed(self) -> None:
        """Move the journal's frames into the queue, oldest first, as it drains (runs until cancelled)."""
        queue, journal = self.queue, self.journal
        while True:
            if journal and len(queue) < self._low:
                for point in journal.read():
                    if not queue.offer(point):  # a frame larger than the room left (a small queue)
                        await queue.put_async(point)
            else:
                await anyio.sleep(_POLL)

    async def emptied(self) -> None:
        """Return once every frame kept so far is in the queue."""
        while self.journal:
            await anyio.sleep(_POLL)

    def rest(self) -> Iterator[list[Point]]:
        """Take the frames still in the journal, oldest first (at close: what was not sent)."""
        while self.journal:
            yield self.journal.read()
