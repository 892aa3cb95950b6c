"""Ingest · what the engine has done with the points of one run, as a user reads it."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Callable

logger = logging.getLogger("sagerun")


@dataclasses.dataclass(frozen=True)
class IngestStats:
    """A snapshot of one run's ingestion.

    ``enqueued`` points were accepted by ``log_metric``; each ends ``delivered``, ``failed`` (refused
    or undeliverable, handed to the dead-letter hook) or ``dropped`` (by the full-queue policy), or is
    still ``queued``/``in_flight``. ``rejected`` counts values that could not be sent at all (NaN,
    infinities) and were never enqueued. ``lag`` is the age in seconds of the oldest point not yet
    delivered (0 when everything is delivered).
    """

    enqueued: int
    delivered: int
    failed: int
    dropped: int
    rejected: int
    retried: int
    """Requests sent again after a throttle, a server error, a timeout or a transient item error."""
    resent_unanswered: int
    """Points whose request got no answer (a timeout, or the connection lost after sending): the
    only case where the endpoint may receive a point twice (delivery is at least once)."""
    queued: int
    in_flight: int
    lag: float
    in_flight_limit: int


def report_close(trial_component_name: str, stats: IngestStats) -> None:
    """Warn at close when points of the run did not all reach the backend."""
    if stats.failed or stats.dropped or stats.rejected:
        logger.warning(
            "sagerun: run %s closed with %d points delivered, %d failed (handed to the dead-letter "
            "hook), %d dropped by the full-queue policy, %d rejected as NaN or infinite",
            trial_component_name, stats.delivered, stats.failed, stats.dropped, stats.rejected,
        )


class LagWarning:
    """Warns, at most once a minute, when the oldest undelivered point of a run is too old."""

    def __init__(self, trial_component_name: str, threshold: float) -> None:
        self.trial_component_name = trial_component_name
        self.threshold = threshold
        self._last = -math.inf

    def check(self, stats: Callable[[], IngestStats]) -> None:
        now = time.monotonic()
        if now - self._last < 60:
            return
        current = stats()
        if current.lag > self.threshold:
            self._last = now
            logger.warning(
                "sagerun: metrics of %s are %.0f s behind (%d queued, %d in flight): the endpoint is slow "
                "or throttling; points are kept, see run.ingest_stats",
                self.trial_component_name, current.lag, current.queued, current.in_flight,
            )
