"""Ingest · the sender process: sends one run's metrics so that the training process does not have to.

Sending costs CPU and, in Python, the GIL: in the training process it slows every step. A run's
forwarder starts ``python -m sagerun._ingest.sender FD`` (FD: its end of a Unix socket pair) and
hands it points in bulk; this process runs the same drain as an inline run (batches, in-flight
limit, retries, per-item errors) over the lean BatchPutMetrics path, or MLflow's log-batch for
the mlflow backend.

The two speak in the named types of ``messages``. If the parent goes away, the sender still
delivers what it holds and keeps what it cannot deliver in the local store's spool.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import sys
import time
from typing import Any, NamedTuple, Sequence

import anyio
import anyio.abc
import anyio.to_thread

from .._model.session import Session
from .._model.answers import ItemError
from ..store.journal import FrameJournal
from ..store.spool import Spool, spool_dead_letter
from ..backends.metrics_http import BATCH_LIMIT, MetricsHTTP
from ..backends.mlflow_rest import MlflowREST, MlflowSink
from .._model.sink import MetricsSink
from .batcher import Batcher
from .drain import STILL_QUEUED
from .frames import GONE, Channel, parse
from .messages import Close, Closed, Credentials, Dead, Flush, Flushed, Log, Message, Points, Ready, Start, Stats
from .._model.points import Point
from .queue import PointQueue
from .spill import Spill
from .system import SystemMetrics, close_share

logger = logging.getLogger("sagerun")

#: seconds between reports of progress to the parent (it frees queue room as points settle); each
#: report wakes the training process's engine
REPORT_INTERVAL = 0.1


class FrozenCredentials(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None


class PushedCredentials:
    """Credentials the parent pushes (it refreshes them; this process never reads AWS config)."""

    def __init__(self, frozen: Sequence[Any]) -> None:
        self.frozen = FrozenCredentials(*frozen)

    async def get_frozen_credentials(self) -> FrozenCredentials:
        return self.frozen


class HTTPSink:
    """The drain's view of the lean BatchPutMetrics path."""

    max_batch = BATCH_LIMIT
    max_in_flight: int | None = None

    def __init__(self, http: MetricsHTTP) -> None:
        self.http = http

    async def put_metrics(self, trial_component_name: str, points: Sequence[Point]) -> Sequence[ItemError]:
        return await self.http.put(trial_component_name, points)


class Outbox(logging.Handler):
    """Dead letters and log records waiting to be reported to the parent; once the parent is gone,
    dead letters go to the spool and records to stderr."""

    def __init__(self, session: Session) -> None:
        super().__init__(logging.DEBUG)
        self.session = session
        self.messages: list[Message] = []
        self.connected = True

    def emit(self, record: logging.LogRecord) -> None:
        if self.connected:
            self.messages.append(Log(record.levelno, record.getMessage()))
        elif logging.lastResort is not None:
            logging.lastResort.handle(record)

    def dead_letter(self, trial_component_name: str, points: Sequence[Point], reason: str) -> None:
        if self.connected:
            self.messages.append(Dead(reason, list(points)))
        else:
            self._spool(trial_component_name, points, reason)

    def take(self) -> list[Message]:
        messages, self.messages = self.messages, []
        return messages

    def disconnect(self, trial_component_name: str, unsent: list[Message]) -> None:
        """The parent is gone: spool the dead letters it did not get."""
        self.connected = False
        for message in unsent + self.take():
            if isinstance(message, Dead):
                self._spool(trial_component_name, [tuple(p) for p in message.points], message.reason)

    def _spool(self, trial_component_name: str, points: Sequence[Point], reason: str) -> None:
        spool_dead_letter(self.session)(trial_component_name, points, reason)


class Sender:
    """Serves one run: reads the parent's messages, drains them through a Batcher, reports back."""

    def __init__(self, channel: Channel, session: Session, trial_component_name: str,
                 endpoint_url: str, region: str, credentials: Sequence[Any], kept_in: str | None,
                 kind: str = "sagemaker") -> None:
        self.channel = channel
        self.kept_in = kept_in
        self.session = session
        self.trial_component_name = trial_component_name
        self.credentials = PushedCredentials(credentials)
        self.http: MetricsHTTP | MlflowREST
        self.sink: MetricsSink
        if kind == "mlflow":
            self.http = MlflowREST(endpoint_url, credentials=self.credentials if credentials[0] else None,
                                   connections=session.max_in_flight, timeout=session.request_timeout)
            self.sink = MlflowSink(self.http)
        else:
            self.http = MetricsHTTP(endpoint_url, region, self.credentials, connections=session.max_in_flight,
                                    timeout=session.request_timeout)
            self.sink = HTTPSink(self.http)
        # Under "spill" the parent frees the room of what it hands over, and this queue, as large as
        # the parent's, spills what it cannot hold; otherwise it is unbounded here, since the parent
        # counts what it forwarded against its own capacity until this process reports it settled.
        spills = session.full_policy == "spill"
        self.queue = PointQueue(session.queue_capacity if spills else sys.maxsize, "block")
        self.spill = Spill(self.queue, FrameJournal(session.store_path, trial_component_name)) if spills else None
        self.left = 0
        """Points left in the journal at close (counted as failed), of which ``kept`` in the spool here."""
        self.kept = 0
        self.outbox = Outbox(session)
        self._reported: Stats | None = None

    async def serve(self) -> None:
        logger.addHandler(self.outbox)
        logger.propagate = False
        try:
            async with Batcher(self.queue, self.sink, self.trial_component_name, self.session,
                               self.outbox.dead_letter, report=False) as batcher:
                async with contextlib.AsyncExitStack() as system:
                    if self.session.system_metrics:  # the training process is this one's parent
                        await system.enter_async_context(SystemMetrics(
                            self.sink, self.trial_component_name, self.session, self.outbox.dead_letter,
                            os.getppid(), exclude=os.getpid()))
                    await self._send(Ready())
                    async with anyio.create_task_group() as tasks:
                        tasks.start_soon(self._report_every_interval, batcher)
                        if self.spill is not None:
                            tasks.start_soon(self.spill.feed)
                        close_in = await self._read(batcher, tasks)
                        tasks.cancel_scope.cancel()
                if self.session.system_metrics:
                    close_in = max(0.0, close_in - close_share(self.session))
                # The parent flushed before it asked to close: what is still here is what the rest of
                # its close_timeout may deliver; the batcher hands the remainder to the dead letters.
                batcher.session = dataclasses.replace(self.session, close_timeout=close_in)
            if self.spill is not None:
                await anyio.to_thread.run_sync(self._leave, self.spill)
            await self._report(batcher)
            await self._send(Closed())
        finally:
            await self.http.aclose()
            if self.spill is not None:
                self.spill.journal.close()

    async def _read(self, batcher: Batcher, tasks: anyio.abc.TaskGroup) -> float:
        """Handle the parent's messages until it asks to close (or is gone); the seconds left to close."""
        offer, put, spill = self.queue.offer, self.queue.put_async, self.spill
        while True:
            try:
                payload = await self.channel.receive_payload()
            except GONE:
                self.outbox.disconnect(self.trial_component_name, [])
                return self.session.close_timeout
            try:
                if spill is not None and spill.keeps(payload):
                    continue
            except OSError:
                logger.exception("sagerun: the sender could not spill points to disk; they wait in memory")
            message = parse(payload)
            if isinstance(message, Points):
                for name, value, step, timestamp in message.points:
                    point = (name, value, step, timestamp)
                    if not offer(point):  # a spill that failed, or a hand-over larger than the room
                        await put(point)
            elif isinstance(message, Credentials):
                self.credentials.frozen = FrozenCredentials(*message.credentials)
            elif isinstance(message, Flush):
                if message.within is not None:
                    batcher.closing(time.monotonic() + float(message.within))
                tasks.start_soon(self._flush, batcher, message.seq)
            elif isinstance(message, Close):
                return max(0.0, float(message.seconds))

    def _leave(self, spill: Spill) -> None:
        """At close, what the journal still holds goes where the run's dead letters go: to the spool
        from here when that is where the parent keeps them, else to the parent's hook."""
        if self.outbox.connected and self.kept_in is None:
            for points in spill.rest():
                self.left += len(points)
                self.outbox.dead_letter(self.trial_component_name, points, STILL_QUEUED)
            return
        with Spool(self.kept_in or self.session.store_path) as spool:
            for points in spill.rest():
                spool.add(self.trial_component_name, points, STILL_QUEUED)
                self.left += len(points)
                self.kept += len(points)

    async def _flush(self, batcher: Batcher, seq: int) -> None:
        if self.spill is not None:
            await self.spill.emptied()
        await batcher.flush()
        await self._report(batcher)
        await self._send(Flushed(seq))

    async def _report_every_interval(self, batcher: Batcher) -> None:
        while True:
            await anyio.sleep(REPORT_INTERVAL)
            await self._report(batcher)

    async def _report(self, batcher: Batcher) -> None:
        """Send dead letters, log records, then the counts (if they changed)."""
        stats = batcher.stats()
        counts = Stats(stats.delivered, stats.failed + self.left, stats.retried, stats.resent_unanswered,
                       stats.in_flight_limit, stats.send_rate, self.kept)
        for message in self.outbox.take():
            await self._send(message)
        if counts != self._reported:
            self._reported = counts
            await self._send(counts)

    async def _send(self, message: Message) -> None:
        if not self.outbox.connected:
            return
        try:
            await self.channel.send(message)
        except GONE:
            self.outbox.disconnect(self.trial_component_name, [message])


async def serve(fd: int) -> None:
    channel = await Channel.from_socket(socket.socket(fileno=fd))
    start = await channel.receive()
    if not isinstance(start, Start):
        raise ValueError(f"the sender process expected Start, got {type(start).__name__}")
    logger.setLevel(start.log_level)  # records below the parent's level would only be dropped there
    sender = Sender(channel, Session(**start.settings), start.trial_component_name, start.endpoint_url,
                    start.region, start.credentials, start.kept_in, start.kind)
    try:
        await sender.serve()
    finally:
        await channel.aclose()


#: niceness added to the sender process: when the CPUs are all busy, the training process runs first
NICENESS = 10


def main() -> None:
    # Ctrl-C is for the training process; this one ends when its parent closes the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(NICENESS)
    anyio.run(serve, int(sys.argv[1]))


if __name__ == "__main__":
    main()
