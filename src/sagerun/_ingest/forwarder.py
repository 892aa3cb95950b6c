"""Ingest · the training process's side of a sender process: hands the queue's points over in bulk.

In the training process this costs one socket write per ``FORWARD_INTERVAL`` (or per
``FORWARD_CHUNK`` points) instead of one signed HTTP request per 10 points. Points handed over stay
counted against the queue's capacity until the sender reports them delivered or failed, so the
full-queue policy still bounds memory; under ``spill`` the sender bounds its own memory by
spilling to disk, so their room is free once they are handed over. If the sender process dies,
what it held is counted as failed and the run goes on sending from this process.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import socket
import subprocess
import sys
import time

import anyio
import anyio.abc

from .._model.answers import DeadLetter
from .._model.points import Point
from .._model.session import Session
from .._model.sink import MetricsSink, MetricsTarget
from .batcher import Batcher
from .drain import Drain
from ..store.journal import frame_points
from .frames import GONE, Channel
from .messages import Close, Closed, Credentials, Dead, Flush, Flushed, Log, Message, Points, Ready, Start, Stats
from .overflow import Overflow
from .queue import PointQueue
from .stats import IngestStats

logger = logging.getLogger("sagerun")

#: most points in one message to the sender
FORWARD_CHUNK = 5_000
#: seconds between hand-overs (flush and close hand over at once): each costs the training process a
#: wake-up of its engine, measured as time its training thread waits for a CPU
FORWARD_INTERVAL = 0.1
#: seconds between pushes of (possibly refreshed) credentials to the sender
CREDENTIALS_INTERVAL = 60.0
#: seconds between looks at the queue while the sender process starts, under ``spill``
STARTING_POLL = 0.01
#: seconds the sender has, beyond the close timeout, to report its last points and exit
CLOSE_GRACE = 5.0


class Forwarder(Drain):
    """Drains one run's queue into a sender process; use as ``async with``. Same face as ``Batcher``:
    ``flush()``, ``stats()``; leaving flushes within ``session.close_timeout``. ``backend`` sends
    the run's points from here once the sender process is gone."""

    fill = FORWARD_CHUNK
    chunk = FORWARD_CHUNK * 10  # a backlog goes in few hand-overs: each waits for the GIL (up to 5 ms)
    linger = FORWARD_INTERVAL

    def __init__(self, queue: PointQueue, backend: MetricsSink, target: MetricsTarget, trial_component_name: str,
                 session: Session, dead_letter: DeadLetter, *, overflow: Overflow | None = None,
                 kept_in: str | None = None) -> None:
        super().__init__(queue, trial_component_name, session, dead_letter, kept_in=kept_in)
        self.backend = backend
        self.overflow = overflow
        """Under ``spill``: where the queue's oldest points go while the sender process starts."""
        self.target = target
        self.forwarded = 0
        self.settled = 0
        self.lost = 0
        """Points the sender held when it died, not reported delivered: lost, or sent unconfirmed."""
        self.counts = Stats(0, 0, 0, 0, session.initial_in_flight, None, 0)
        self._holds = session.full_policy != "spill"
        """Whether points handed over keep their room in the queue until they settle."""
        # (forwarded count at the end of a chunk, timestamp of its first point) of chunks not yet
        # settled: the lag of what the sender holds, read without asking it
        self._chunks: collections.deque[tuple[int, float]] = collections.deque()
        self._channel: Channel | None = None
        self._process: anyio.abc.Process | None = None
        self._inline: Batcher | None = None
        self._inline_ready = anyio.Event()
        self._dead = False
        self._ready = anyio.Event()
        self._abandoned = False
        """Closed before the sender process was ready: stopped unused, the points sent from here."""
        self._closed = anyio.Event()
        self._flushes: dict[int, anyio.Event] = {}
        self._seq = itertools.count()
        self._next_credentials = 0.0
        self._started = 0.0

    async def __aenter__(self) -> Forwarder:
        ours, theirs = socket.socketpair()
        self._started = time.monotonic()
        try:
            with theirs:
                self._process = await anyio.open_process(
                    [sys.executable, "-m", "sagerun._ingest.sender", str(theirs.fileno())],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=None,
                    pass_fds=(theirs.fileno(),), start_new_session=True,
                )
            self._channel = await Channel.from_socket(ours)
            settings = {f.name: getattr(self.session, f.name) for f in dataclasses.fields(self.session)
                        if f.name != "boto_session"}
            settings["store"] = self.session.store_path
            await self._channel.send(Start(settings, self.trial_component_name, self.target.endpoint_url,
                                           self.target.region, await self._credentials(),
                                           logger.getEffectiveLevel(), self.kept_in, self.target.kind))
        except BaseException:
            ours.close()
            if self._process is not None:
                self._process.kill()
                await self._process.aclose()
            raise
        self._next_credentials = time.monotonic() + CREDENTIALS_INTERVAL
        await super().__aenter__()
        return self

    def stats(self) -> IngestStats:
        counts = self.counts
        queue = self.queue
        inline = self._inline.stats() if self._inline is not None else None
        chunks = self._chunks
        try:  # not "if chunks": read from other threads while the engine's thread pops the deque
            sent_oldest: float | None = chunks[0][1]
        except IndexError:
            sent_oldest = None
        oldest = [t for t in (queue.oldest_timestamp(), sent_oldest) if t is not None]
        if inline is not None and inline.lag:
            oldest.append(time.time() - inline.lag)
        return IngestStats(
            enqueued=queue.removed + len(queue),
            delivered=counts.delivered + (inline.delivered if inline else 0),
            failed=counts.failed + self.lost + self.dead_lettered + (inline.failed if inline else 0),
            dropped=queue.dropped,
            rejected=queue.rejected,
            retried=counts.retried + (inline.retried if inline else 0),
            resent_unanswered=counts.resent_unanswered + (inline.resent_unanswered if inline else 0),
            queued=len(queue),
            in_flight=self.forwarded - self.settled + (inline.in_flight if inline else 0),
            lag=max(0.0, time.time() - min(oldest)) if oldest else 0.0,
            in_flight_limit=inline.in_flight_limit if inline else counts.in_flight_limit,
            send_rate=inline.send_rate if inline else counts.send_rate,
        )

    def _handed(self) -> collections.Counter[str]:
        handed = self.handed + collections.Counter({"": self.counts.kept})
        return handed + self._inline.handed if self._inline is not None else handed

    # -- the drain ---------------------------------------------------------------------------------

    async def _run(self, tasks: anyio.abc.TaskGroup) -> None:
        tasks.start_soon(self._read)
        if await self._sender_ready(tasks):
            await self._hand_over_spilled(tasks)
            await self._loop(tasks)
        # The sender process is gone: the rest of the run is sent from here.
        async with Batcher(self.queue, self.backend, self.trial_component_name, self.session,
                           self.dead_letter, overflow=self.overflow, report=False, kept_in=self.kept_in) as inline:
            self._inline = inline
            self._inline_ready.set()
            await anyio.sleep_forever()

    def _taking(self) -> bool:
        return not self._dead

    async def _handle(self, points: list[Point], tasks: anyio.abc.TaskGroup) -> None:
        if time.monotonic() > self._next_credentials:
            self._next_credentials = time.monotonic() + CREDENTIALS_INTERVAL
            await self._send_or_dead_letter(Credentials(await self._credentials()), [])
        if points:
            self._hold(len(points))
            if await self._send_or_dead_letter(Points(points), points):
                self.forwarded += len(points)
                self._chunks.append((self.forwarded, points[0][3]))

    async def _settle(self) -> None:
        if not self._dead:
            assert self._channel is not None
            seq = next(self._seq)
            done = self._flushes[seq] = anyio.Event()
            try:
                # At close the sender hears how long it has, so that its retries wait less.
                within = None if self.close_by is None else max(0.0, self.close_by - time.monotonic())
                await self._channel.send(Flush(seq, within))
            except GONE:
                pass  # the reader finds the sender gone and ends every wait
            await done.wait()
        if self._dead:
            await self._inline_ready.wait()
            assert self._inline is not None
            if self.close_by is not None:
                self._inline.closing(self.close_by)
            await self._inline.flush()

    async def _finish(self, deadline: float) -> None:
        assert self._channel is not None and self._process is not None
        if not self._dead:
            left = max(0.0, deadline - time.monotonic())
            try:
                await self._channel.send(Close(left))
            except GONE:
                pass
            with anyio.move_on_after(left + CLOSE_GRACE):
                await self._closed.wait()
            if not self._closed.is_set():
                logger.error("sagerun: the sender process of %s did not finish in time; stopping it",
                             self.trial_component_name)
                self._process.kill()
                await self._closed.wait()  # the reader sees the socket close and counts the loss
        if self._inline is not None:  # its own close flushes within what is left, not anew
            self._inline.session = dataclasses.replace(
                self.session, close_timeout=max(0.0, deadline - time.monotonic()))

    async def _after(self) -> None:
        assert self._channel is not None and self._process is not None
        await self._channel.aclose()
        with anyio.move_on_after(CLOSE_GRACE):
            await self._process.wait()
        if self._process.returncode is None:
            self._process.kill()
        await self._process.aclose()

    # -- the sender process ----------------------------------------------------------------------

    async def _credentials(self) -> list[str | None]:
        if self.target.credentials is None:
            return [None, None, None]
        frozen = await self.target.credentials.get_frozen_credentials()
        return [frozen.access_key, frozen.secret_key, frozen.token]

    async def _sender_ready(self, tasks: anyio.abc.TaskGroup) -> bool:
        """Wait until the sender process is ready (it starts in about a second); a run that closes
        before then sends its points from here, so that short runs never wait for a process."""
        while not self._ready.is_set():
            if self._closing or self._dead:
                assert self._process is not None
                self._abandoned = self._dead = True
                self._process.kill()
                self._made_progress()
                return False
            await self._spill_if_half_full(tasks)
            # Under spill the queue is watched closely: a loop logging a million points a second
            # fills half of the default queue in 50 ms.
            with anyio.move_on_after(FORWARD_INTERVAL if self.overflow is None else STARTING_POLL):
                await self._wakeup.wait()
            self._wakeup = anyio.Event()
            self._lag.check(self.stats)
        logger.debug("sagerun: the sender process of %s was ready %.3f s after it was started",
                     self.trial_component_name, time.monotonic() - self._started)
        return True

    async def _spill_if_half_full(self, tasks: anyio.abc.TaskGroup) -> None:
        """Under ``spill``, while the sender cannot take them, the oldest points of a queue more than
        half full go to the overflow; those the disk does not take are handed over at once (the
        socket keeps them until the sender reads)."""
        if self.overflow is not None and (unkept := await self.overflow.relieve(self.queue)):
            await self._handle(unkept, tasks)

    async def _hand_over_spilled(self, tasks: anyio.abc.TaskGroup) -> None:
        """What was spilled while the sender started is older than anything queued: it goes first,
        as the frames it was kept in (the sender keeps them as they are if it has no room)."""
        assert self._channel is not None
        while self.overflow and not self._dead:
            await self._spill_if_half_full(tasks)  # behind what was spilled before: the order holds
            frame, count, oldest = await self.overflow.take_frame()
            try:
                await self._channel.send_payload(frame)
            except GONE:
                self._dead_letter(frame_points(frame), "the sender process was gone")
                await self._closed.wait()
                return
            self.forwarded += count
            self._chunks.append((self.forwarded, oldest))

    async def _send_or_dead_letter(self, message: Message, points: list[Point]) -> bool:
        """Send ``message``; if the sender is gone, its ``points`` go to the dead-letter hook."""
        assert self._channel is not None
        try:
            await self._channel.send(message)
        except GONE:
            self._release(len(points))
            self._dead_letter(points, "the sender process was gone")
            await self._closed.wait()  # the reader finds it gone and switches the run to inline
            return False
        return True

    async def _read(self) -> None:
        assert self._channel is not None
        try:
            while True:
                message = await self._channel.receive()
                if isinstance(message, Stats):
                    self._settled_by(message)
                elif isinstance(message, Dead):
                    self._dead_letter([(n, v, s, t) for n, v, s, t in message.points], message.reason, counted=True)
                elif isinstance(message, Log):
                    logger.log(int(message.level), "%s", message.text)
                elif isinstance(message, Flushed):
                    self._flushes.pop(message.seq).set()
                elif isinstance(message, Ready):
                    self._ready.set()
                elif isinstance(message, Closed):
                    return
        except (*GONE, ValueError, KeyError):
            self._sender_died()
        finally:
            self._closed.set()
            for event in self._flushes.values():
                event.set()
            self._flushes.clear()

    def _hold(self, count: int) -> None:
        if self._holds:
            self.queue.hold(count)

    def _release(self, count: int) -> None:
        if self._holds:
            self.queue.release(count)

    def _settled_by(self, counts: Stats) -> None:
        settled = counts.delivered + counts.failed
        if settled > self.settled:
            self._release(settled - self.settled)
            self.settled = settled
            chunks = self._chunks
            while chunks and chunks[0][0] <= settled:
                chunks.popleft()
        self.counts = counts

    def _sender_died(self) -> None:
        assert self._process is not None
        if self._abandoned:
            return
        unsettled = self.forwarded - self.settled
        self.lost += unsettled
        self.settled = self.forwarded
        self._chunks.clear()
        self._release(unsettled)
        self._dead = True
        self._wakeup.set()
        code = self._process.returncode
        logger.error("sagerun: the sender process of %s %s holding %d points not reported delivered: they are "
                     "counted in ingest_stats.failed (the last ones it sent may have arrived; the others are "
                     "lost). The run's metrics are sent from the training process from now on",
                     self.trial_component_name,
                     "stopped answering" if code is None else f"exited unexpectedly (exit code {code})", unsettled)
