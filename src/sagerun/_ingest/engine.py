"""Ingest · the engine of one run, wired in one place: which drain empties its queue (a sender
process, or the inline drain), what durable mode journals, and where failed points go.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from typing import Sequence, Union

from .._model.answers import DeadLetter
from .._model.environment import local_rank
from .._model.points import Point
from .._model.session import Session
from ..backends.base import Backend
from ..store.journal import FrameJournal
from ..store.spool import SpoolJournal, spool_dead_letter
from .batcher import Batcher
from .forwarder import Forwarder
from .overflow import Overflow
from .queue import PointQueue
from .system import SystemMetrics, close_share

logger = logging.getLogger("sagerun")

Engine = Union[Batcher, Forwarder]


def log_dead_letters(trial_component_name: str, points: Sequence[Point], reason: str) -> None:
    """The dead-letter hook of runs whose backend keeps no spool: say what was not delivered, loudly."""
    logger.warning("sagerun: %d points of %s could not be delivered (%s)", len(points), trial_component_name, reason)


async def start_engine(stack: contextlib.AsyncExitStack, queue: PointQueue, backend: Backend,
                       trial_component_name: str, session: Session, dead_letter: DeadLetter | None) -> Engine:
    """Start draining ``queue`` into the entered ``backend``; ``stack`` closes the engine, flushing it.

    A remote backend's failed points go to the local store's spool unless ``dead_letter`` is given;
    under the ``spill`` policy, so do the points beyond the queue's room until they are sent.
    A sender process sends them where the session asks for one and it can work: not in durable mode
    (it journals from this process), not for a backend that only this process can reach.
    """
    if session.system_metrics and local_rank() > 0:
        # One sampler a host: the machine is the same for every rank on it.
        logger.info("sagerun: system metrics are sampled by local rank 0 of this host, not by this rank")
        session = dataclasses.replace(session, system_metrics=False)
    kept_in = None
    if dead_letter is None:
        dead_letter = spool_dead_letter(session) if backend.remote else log_dead_letters
        kept_in = session.store_path if backend.remote else None
    journal: SpoolJournal | None = None
    overflow: Overflow | None = None
    if session.durable and backend.remote:
        journal = SpoolJournal(session.store_path)
        stack.callback(journal.close)
    if session.full_policy == "spill" and backend.remote and journal is None:
        spilled = FrameJournal(session.store_path, trial_component_name)
        stack.callback(spilled.close)
        overflow = Overflow(spilled)
    target = backend.metrics_target() if session.sender == "process" and journal is None else None
    drain: Engine
    if target is None or os.name != "posix":
        # The system metrics close first, within their share of close_timeout (the sender's own do too).
        shared = dataclasses.replace(session, close_timeout=session.close_timeout - close_share(session)) \
            if session.system_metrics else session
        drain = await stack.enter_async_context(Batcher(queue, backend, trial_component_name, shared, dead_letter,
                                                        journal, overflow=overflow, kept_in=kept_in))
        if session.system_metrics:
            await stack.enter_async_context(SystemMetrics(backend, trial_component_name, session, dead_letter,
                                                          os.getpid()))
        return drain
    return await stack.enter_async_context(Forwarder(queue, backend, target, trial_component_name, session,
                                                     dead_letter, overflow=overflow, kept_in=kept_in))
