"""Ingest · the queue: bounded, filled by any thread, emptied by the run's drain.

The hot path is one length check and one ``deque.append``, both atomic under the GIL, so callers on
any thread never take a lock; locks guard only the slow paths (a full queue, blocks of points).
Items are ``Point`` tuples or ``Block`` objects; capacity counts points, not items.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Union

import anyio

from .._model.errors import EngineThreadError, QueueFullError
from .._model.session import FullPolicy
from .._model.points import Block, Point

Item = Union[Point, Block]

_engine_thread: int | None = None


def set_engine_thread(ident: int | None) -> None:
    """Name the thread whose event loop runs the drains (the sync facade's engine), or none: a full
    queue never waits there, since the room it waits for would be made by that same thread."""
    global _engine_thread
    _engine_thread = ident


class PointQueue:
    """Bounded FIFO of points with an explicit policy for when it is full."""

    def __init__(self, capacity: int, policy: FullPolicy) -> None:
        self.capacity = capacity
        self._limit = capacity  # capacity less the points held outside the queue (durable mode)
        self.policy = policy
        # "spill" waits as "block" does: its drain makes room by writing points to disk, so a full
        # queue means the disk is not keeping up, and waiting is what keeps memory bounded.
        self._waits = policy in ("block", "spill")
        self._items: deque[Item] = deque()
        self._block_extra = 0  # points beyond one per item, held by blocks
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._blocked = 0
        self.removed = 0
        """Points that left the queue, taken by the drain or dropped as the oldest."""
        self.dropped = 0
        self.rejected = 0
        """Points refused before queueing because SageMaker cannot take their value (NaN, inf)."""

    def __len__(self) -> int:
        return len(self._items) + self._block_extra

    def oldest_timestamp(self) -> float | None:
        try:
            head = self._items[0]
        except IndexError:
            return None
        return head.first_timestamp if isinstance(head, Block) else head[3]

    def _empty(self) -> bool:
        """Nothing queued nor held: the one state in which more than the room may enter (a block
        larger than the capacity must not wait forever); held points free their room later."""
        return not self._items and self._limit == self.capacity

    def hold(self, count: int) -> None:
        """Count ``count`` points taken out, but not yet sent, against the capacity."""
        with self._lock:
            self._limit -= count

    def release(self, count: int) -> None:
        """The held points are on their way: their room is free again."""
        with self._lock:
            self._limit += count
            if self._blocked:
                self._room.notify_all()

    def reject(self, count: int) -> None:
        with self._lock:
            self.rejected += count

    def put(self, point: Point) -> None:
        """Queue ``point`` from any thread; on a full queue apply the policy (``block`` waits)."""
        if len(self._items) + self._block_extra < self._limit:
            self._items.append(point)
        else:
            self._put_full(point, 1)

    def offer(self, point: Point) -> bool:
        """Queue ``point`` if there is room, without waiting; ``False`` when full."""
        if len(self._items) + self._block_extra < self._limit:
            self._items.append(point)
            return True
        return False

    async def put_async(self, point: Point) -> None:
        """Like ``put`` for a caller on the drain's own event loop: ``block`` and ``spill`` await instead."""
        if not self._waits:
            if not self.offer(point):
                self._put_full(point, 1)
            return
        while not self.offer(point):
            await anyio.sleep(0.001)  # the drain runs on this same loop: yield to it

    def put_block(self, block: Block, *, wait: bool = True) -> None:
        """Queue a block of points; a caller that must not block the loop passes ``wait=False``."""
        size = len(block)
        with self._lock:
            if len(self._items) + self._block_extra + size <= self._limit or (
                self._empty() and self._waits
            ):
                self._append_block(block)
                return
        self._put_full(block, size, wait=wait)

    async def put_block_async(self, block: Block) -> None:
        if self._waits:
            size = len(block)
            while len(self) + size > self._limit and not self._empty():
                await anyio.sleep(0.001)
        self.put_block(block, wait=False)

    def put_items(self, items: list[Item]) -> None:
        """Queue points and blocks in order from any thread, each as ``put``/``put_block`` would."""
        for item in items:
            if isinstance(item, Block):
                self.put_block(item)
            else:
                self.put(item)

    async def put_items_async(self, items: list[Item]) -> None:
        """Like ``put_items`` for a caller on the drain's own event loop."""
        for item in items:
            if isinstance(item, Block):
                await self.put_block_async(item)
            else:
                await self.put_async(item)

    def _append_block(self, block: Block) -> None:
        self._items.append(block)
        self._block_extra += len(block) - 1

    def _append(self, item: Item) -> None:
        if isinstance(item, Block):
            self._append_block(item)
        else:
            self._items.append(item)

    def _put_full(self, item: Item, size: int, *, wait: bool = True) -> None:
        policy = self.policy
        if policy == "drop_newest":
            with self._lock:
                self.dropped += size
            return
        if policy == "raise":
            raise QueueFullError(
                f"the metrics queue is full ({self.capacity} points) and the run's full_policy is 'raise': "
                "log less often, raise Session(queue_capacity=...), or choose another full_policy"
            )
        with self._lock:
            if policy == "drop_oldest":
                while self._items and len(self._items) + self._block_extra + size > self._limit:
                    self._drop_head()
            elif wait:
                if threading.get_ident() == _engine_thread:
                    raise EngineThreadError(
                        "sagerun: a metric was logged to a full queue on sagerun's own event-loop thread (for "
                        "example from a dead-letter hook), where waiting for room would wait forever. Log from "
                        "another thread, or use the async API (sagerun.Run) in code that runs on the engine")
                self._blocked += 1
                try:
                    while not self._empty() and len(self._items) + self._block_extra + size > self._limit:
                        self._room.wait(0.1)
                finally:
                    self._blocked -= 1
            self._append(item)

    def _drop_head(self) -> None:
        head = self._items.popleft()
        size = self._count_out(head)
        self.dropped += size
        self.removed += size

    def _count_out(self, item: Item) -> int:
        if isinstance(item, Block):
            self._block_extra -= len(item) - 1
            return len(item)
        return 1

    def take(self, limit: int) -> list[Point]:
        """Remove and return up to ``limit`` points, oldest first (drain task only)."""
        out: list[Point] = []
        items = self._items
        while len(out) < limit:
            try:
                item = items.popleft()
            except IndexError:
                break
            if isinstance(item, Block):
                room = limit - len(out)
                with self._lock:
                    if len(item) > room:
                        # Keep the rest as a block at the head: order kept, no per-point objects yet.
                        item, rest = item.split(room)
                        items.appendleft(rest)
                        self._block_extra -= len(item)
                    else:
                        self._block_extra -= len(item) - 1
                out.extend(item.points())
            else:
                out.append(item)
        with self._lock:
            self.removed += len(out)
            if self._blocked:
                self._room.notify_all()
        return out

    def drain_all(self) -> list[Point]:
        """Everything still queued, for the dead-letter hook at close."""
        return self.take(len(self) + 1)
