"""The training process's side of a sender process: hands the queue's points over in bulk.

In the training process this costs one socket write per ``FORWARD_INTERVAL`` (or per
``FORWARD_CHUNK`` points) instead of one signed HTTP request per 10 points. Points handed over stay
counted against the queue's capacity until the sender reports them delivered or failed, so the
full-queue policy still bounds memory. If the sender process dies, what it held is counted as
failed and the run goes on sending from this process.
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
from typing import Any

import anyio
import anyio.abc

from .._session import Session
from ..backends.base import Backend, MetricsTarget
from .batcher import Batcher, DeadLetter
from .frames import GONE, Channel
from .points import Point
from .queue import PointQueue
from .stats import IngestStats, LagWarning, report_close

logger = logging.getLogger("sagerun")

#: most points in one message to the sender
FORWARD_CHUNK = 5_000
#: seconds between hand-overs (flush and close hand over at once): each costs the training process a
#: wake-up of its engine, measured as time its training thread waits for a CPU
FORWARD_INTERVAL = 0.1
#: seconds between pushes of (possibly refreshed) credentials to the sender
CREDENTIALS_INTERVAL = 60.0
#: seconds the sender has, beyond the close timeout, to report its last points and exit
CLOSE_GRACE = 5.0


class Forwarder:
    """Drains one run's queue into a sender process; use as ``async with``. Same face as ``Batcher``:
    ``flush()``, ``stats()``; leaving flushes within ``session.close_timeout``."""

    def __init__(self, queue: PointQueue, backend: Backend, target: MetricsTarget, trial_component_name: str,
                 session: Session, dead_letter: DeadLetter) -> None:
        self.queue = queue
        self.backend = backend
        self.target = target
        self.trial_component_name = trial_component_name
        self.session = session
        self.dead_letter = dead_letter
        self.forwarded = 0
        self.settled = 0
        self.lost = 0
        """Points the sender held when it died, not reported delivered: lost, or sent unconfirmed."""
        self.kept = 0
        """Points handed to the dead-letter hook from this side."""
        self.counts: dict[str, Any] = {"delivered": 0, "failed": 0, "retried": 0, "resent_unanswered": 0,
                                       "in_flight_limit": session.initial_in_flight}
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
        self._wakeup = anyio.Event()
        self._progress = anyio.Event()
        self._flushing = 0
        self._closing = False
        self._task_group: anyio.abc.TaskGroup | None = None
        self._scope = anyio.CancelScope()
        self._lag = LagWarning(trial_component_name, session.lag_warning)

    async def __aenter__(self) -> Forwarder:
        ours, theirs = socket.socketpair()
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
            await self._channel.send(["start", settings, self.trial_component_name, self.target.endpoint_url,
                                      self.target.region, await self._credentials(),
                                      logger.getEffectiveLevel()])
        except BaseException:
            ours.close()
            if self._process is not None:
                self._process.kill()
                await self._process.aclose()
            raise
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._scope = await self._task_group.start(self._run, name=f"sagerun forward {self.trial_component_name}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task_group is not None and self._channel is not None and self._process is not None
        with anyio.CancelScope(shield=True):
            self._closing = True
            self._wakeup.set()
            deadline = time.monotonic() + self.session.close_timeout
            with anyio.move_on_after(self.session.close_timeout):
                await self.flush()
            if not self._dead:
                left = max(0.0, deadline - time.monotonic())
                try:
                    await self._channel.send(["close", left])
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
        self._scope.cancel()
        try:
            await self._task_group.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True):
                leftover = self.queue.drain_all()
                if leftover:
                    self._keep(leftover, "still queued when the run closed")
                await self._channel.aclose()
                with anyio.move_on_after(CLOSE_GRACE):
                    await self._process.wait()
                if self._process.returncode is None:
                    self._process.kill()
                await self._process.aclose()
            report_close(self.trial_component_name, self.stats())

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
            delivered=counts["delivered"] + (inline.delivered if inline else 0),
            failed=counts["failed"] + self.lost + self.kept + (inline.failed if inline else 0),
            dropped=queue.dropped,
            rejected=queue.rejected,
            retried=counts["retried"] + (inline.retried if inline else 0),
            resent_unanswered=counts["resent_unanswered"] + (inline.resent_unanswered if inline else 0),
            queued=len(queue),
            in_flight=self.forwarded - self.settled + (inline.in_flight if inline else 0),
            lag=max(0.0, time.time() - min(oldest)) if oldest else 0.0,
            in_flight_limit=inline.in_flight_limit if inline else counts["in_flight_limit"],
        )

    async def flush(self) -> None:
        """Return once every point queued before the call is delivered or has failed for good."""
        target = self.queue.removed + len(self.queue)
        self._flushing += 1
        try:
            while self.queue.removed < target and not self._dead:
                self._wakeup.set()
                await self._progress.wait()
            if not self._dead:
                assert self._channel is not None
                seq = next(self._seq)
                done = self._flushes[seq] = anyio.Event()
                try:
                    await self._channel.send(["flush", seq])
                except GONE:
                    pass  # the reader finds the sender gone and ends every wait
                await done.wait()
            if self._dead:
                await self._inline_ready.wait()
                assert self._inline is not None
                await self._inline.flush()
        finally:
            self._flushing -= 1

    async def _credentials(self) -> list[str | None]:
        frozen = await self.target.credentials.get_frozen_credentials()
        return [frozen.access_key, frozen.secret_key, frozen.token]

    async def _run(self, *, task_status: anyio.abc.TaskStatus[anyio.CancelScope]) -> None:
        # Shielded like the batcher's drain: cancelling the caller must not cut the hand-over;
        # leaving the run ends it through this scope.
        with anyio.CancelScope(shield=True) as scope:
            task_status.started(scope)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._read)
                await self._forward()
            # The sender process is gone: the rest of the run is sent from here.
            async with Batcher(self.queue, self.backend, self.trial_component_name, self.session,
                               self.dead_letter, report=False) as inline:
                self._inline = inline
                self._inline_ready.set()
                await anyio.sleep_forever()

    async def _forward(self) -> None:
        queue = self.queue
        channel = self._channel
        assert channel is not None
        if not await self._sender_ready():
            return
        next_credentials = time.monotonic() + CREDENTIALS_INTERVAL
        while not self._dead:
            waiting = len(queue)
            if not waiting or (waiting < FORWARD_CHUNK and not (self._flushing or self._closing)):
                with anyio.move_on_after(FORWARD_INTERVAL):
                    await self._wakeup.wait()
                self._wakeup = anyio.Event()
                self._lag.check(self.stats)
            points = queue.take(FORWARD_CHUNK)
            if time.monotonic() > next_credentials:
                next_credentials = time.monotonic() + CREDENTIALS_INTERVAL
                await self._send_or_keep(channel, ["credentials", await self._credentials()], [])
            if points:
                queue.hold(len(points))
                if await self._send_or_keep(channel, ["points", points], points):
                    self.forwarded += len(points)
                    self._chunks.append((self.forwarded, points[0][3]))
            self._progress.set()
            self._progress = anyio.Event()

    async def _sender_ready(self) -> bool:
        """Wait until the sender process is ready (it starts in about a second); a run that closes
        before then sends its points from here, so that short runs never wait for a process."""
        while not self._ready.is_set():
            if self._closing or self._dead:
                assert self._process is not None
                self._abandoned = self._dead = True
                self._process.kill()
                self._progress.set()
                return False
            with anyio.move_on_after(FORWARD_INTERVAL):
                await self._wakeup.wait()
            self._wakeup = anyio.Event()
            self._lag.check(self.stats)
        return True

    async def _send_or_keep(self, channel: Channel, message: list[Any], points: list[Point]) -> bool:
        """Send ``message``; if the sender is gone, its ``points`` go to the dead-letter hook."""
        try:
            await channel.send(message)
        except GONE:
            self.queue.release(len(points))
            self._keep(points, "the sender process was gone")
            await self._closed.wait()  # the reader finds it gone and switches the run to inline
            return False
        return True

    async def _read(self) -> None:
        assert self._channel is not None
        try:
            while True:
                message = await self._channel.receive()
                kind = message[0]
                if kind == "ready":
                    self._ready.set()
                elif kind == "stats":
                    self._settle(message[1])
                elif kind == "dead":
                    self._keep([(n, v, s, t) for n, v, s, t in message[2]], message[1], counted=True)
                elif kind == "log":
                    logger.log(int(message[1]), "%s", message[2])
                elif kind == "flushed":
                    self._flushes.pop(message[1]).set()
                elif kind == "closed":
                    return
        except (*GONE, ValueError, KeyError):
            self._sender_died()
        finally:
            self._closed.set()
            for event in self._flushes.values():
                event.set()
            self._flushes.clear()

    def _settle(self, counts: dict[str, Any]) -> None:
        settled = counts["delivered"] + counts["failed"]
        if settled > self.settled:
            self.queue.release(settled - self.settled)
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
        self.queue.release(unsettled)
        self._dead = True
        self._wakeup.set()
        code = self._process.returncode
        logger.error("sagerun: the sender process of %s %s holding %d points not reported delivered: they are "
                     "counted in ingest_stats.failed (the last ones it sent may have arrived; the others are "
                     "lost). The run's metrics are sent from the training process from now on",
                     self.trial_component_name,
                     "stopped answering" if code is None else f"exited unexpectedly (exit code {code})", unsettled)

    def _keep(self, points: list[Point], reason: str, *, counted: bool = False) -> None:
        """Hand ``points`` to the dead-letter hook; ``counted``: the sender counted them as failed."""
        if not points:
            return
        if not counted:
            self.kept += len(points)
        try:
            self.dead_letter(self.trial_component_name, points, reason)
        except Exception:
            logger.exception("sagerun: the dead-letter hook failed; %d points are lost", len(points))
