"""Ingest · what the engine has done with the points of one run, as a user reads it."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Callable, Mapping

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
    send_rate: float | None = None
    """Requests a second the engine keeps to since the endpoint throttled it (``None``: never
    throttled, not paced); it climbs back as requests are taken."""
    skipped_resumed: int = 0
    """Points of a resumed run skipped because the run had a point of that metric at that step or
    a later one already (a restarted job logging its steps since the checkpoint again); see
    ``Run(resume=...)``."""


def report_close(trial_component_name: str, stats: IngestStats, handed: Mapping[str, int],
                 kept_in: str | None) -> None:
    """Say once, at close, what became of the points of the run that did not reach the backend.

    ``handed`` counts the points the dead-letter hook took, by refusal code ("" for undelivered);
    ``kept_in`` is the store whose spool keeps them, when the hook is the default one.
    """
    if not (stats.failed or stats.dropped or stats.rejected):
        return
    parts = [f"{stats.delivered:,} points delivered"]
    refused = {code: count for code, count in sorted(handed.items()) if code}
    if stats.failed:
        where = f"kept in the spool of {kept_in}" if kept_in else "handed to the dead-letter hook"
        details = [f"{count:,} refused with {code}" for code, count in refused.items()]
        lost = stats.failed - sum(handed.values())
        details += [f"{lost:,} lost or sent unconfirmed (see the errors above)"] if lost > 0 else []
        parts.append(f"{stats.failed:,} failed, {where}" + (f" ({'; '.join(details)})" if details else ""))
    if stats.dropped:
        parts.append(f"{stats.dropped:,} dropped by the full-queue policy")
    if stats.rejected:
        parts.append(f"{stats.rejected:,} rejected as NaN or infinite")
    message = f"sagerun: run {trial_component_name} closed with {', '.join(parts)}"
    if stats.failed and kept_in:
        message += f". `sagerun sync --store {kept_in}` sends them"
        if refused:
            message += " (with --retry-refused also the refused ones, once their cause is fixed)"
    logger.warning("%s", message)


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
