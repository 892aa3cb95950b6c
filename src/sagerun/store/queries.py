"""Store · reading the local store: runs, a run by the name a person types, metric summaries and series."""

from __future__ import annotations

import dataclasses
import datetime
import sqlite3
from typing import Iterator

from .._model.errors import SagerunError
from .._model.naming import check_name
from .metrics import Series, read_series


class RunNotFoundError(SagerunError, LookupError):
    """No run of the local store answers to the name given."""


class AmbiguousRunError(SagerunError, LookupError):
    """Several runs answer to the name given; ``matches`` holds them as ``experiment/run``."""

    def __init__(self, message: str, matches: list[str]) -> None:
        super().__init__(message)
        self.matches = matches


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """One run of the local store, as listed."""

    id: int
    experiment: str
    name: str
    trial_component_name: str
    display_name: str | None
    status: str | None
    status_message: str | None
    start_time: float | None
    end_time: float | None
    created_time: float
    metrics: int
    """how many metrics (series) the run has"""
    points: int
    """how many points, all metrics together"""
    parent: str | None = None
    """the parent run's trial component name, for a child run"""

    @property
    def ref(self) -> str:
        """``experiment/run``: the name that picks this run out of any store."""
        return f"{self.experiment}/{self.name}"

    @property
    def duration(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time

    def as_json(self) -> dict[str, object]:
        return {
            "experiment": self.experiment, "run": self.name, "trial_component_name": self.trial_component_name,
            "display_name": self.display_name, "status": self.status, "status_message": self.status_message,
            "start_time": iso(self.start_time), "end_time": iso(self.end_time), "metric_count": self.metrics,
            "point_count": self.points, "parent": self.parent,
        }


@dataclasses.dataclass(frozen=True)
class MetricSummary:
    """What ``show`` prints of one metric: count, min, max, and the last value logged (with its step)."""

    name: str
    count: int
    min: float
    max: float
    last: float
    last_step: int | None
    last_timestamp: float

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "count": self.count, "min": self.min, "max": self.max, "last": self.last,
                "last_step": self.last_step, "last_timestamp": iso(self.last_timestamp)}


_RUNS = """
SELECT r.id, e.name, r.name, r.trial_component_name, r.display_name, r.status, r.status_message,
       r.start_time, r.end_time, r.created_time,
       (SELECT count(*) FROM series s WHERE s.run_id = r.id),
       (SELECT coalesce(sum(m.count), 0) FROM series s JOIN metrics m ON m.series_id = s.id WHERE s.run_id = r.id),
       r.parent
FROM runs r JOIN experiments e ON e.id = r.experiment_id
"""


def list_runs(conn: sqlite3.Connection, experiment: str | None = None) -> list[RunInfo]:
    """The runs of the store, or of ``experiment``, oldest first.

    Raises:
        RunNotFoundError: there is no experiment named ``experiment`` (the message lists those there are).
        ValueError: ``experiment`` cannot be an experiment name.
    """
    if experiment is None:
        return [RunInfo(*row) for row in conn.execute(_RUNS + " ORDER BY r.created_time, r.id")]
    name = check_name("EXPERIMENT", experiment)
    if conn.execute("SELECT 1 FROM experiments WHERE name = ?", (name,)).fetchone() is None:
        known = [row[0] for row in conn.execute("SELECT name FROM experiments ORDER BY name")]
        raise RunNotFoundError(f"no experiment named {experiment!r} in the local store; "
                               f"experiments: {', '.join(known) or 'none yet'}")
    return [RunInfo(*row) for row in conn.execute(_RUNS + " WHERE e.name = ? ORDER BY r.created_time, r.id", (name,))]


def as_tree(runs: list[RunInfo]) -> list[tuple[int, RunInfo]]:
    """``runs`` in the order of a tree, each with its depth: a child after its parent, children in
    the order given; a child whose parent is not among ``runs`` stands at the top."""
    present = {run.trial_component_name for run in runs}
    children: dict[str | None, list[RunInfo]] = {}
    for run in runs:
        children.setdefault(run.parent if run.parent in present else None, []).append(run)
    ordered: list[tuple[int, RunInfo]] = []
    stack = [(0, run) for run in reversed(children.get(None, []))]
    while stack:
        depth, run = stack.pop()
        ordered.append((depth, run))
        stack += [(depth + 1, child) for child in reversed(children.get(run.trial_component_name, []))]
    return ordered


def find_run(conn: sqlite3.Connection, ref: str) -> RunInfo:
    """The run named by ``ref``: ``experiment/run``, a run name, or a trial component name.

    Names are matched as SageMaker stores them (lower case, hyphens), so ``Digits/LR 0.1`` finds
    ``digits/lr-0-1``.

    Raises:
        RunNotFoundError: no run answers to ``ref``.
        AmbiguousRunError: several do (the message lists them as ``experiment/run``).
        ValueError: ``ref`` cannot be a run name.
    """
    experiment, _, run = ref.rpartition("/")
    if experiment:
        rows = conn.execute(_RUNS + " WHERE e.name = ? AND r.name = ?",
                            (check_name("RUN's experiment", experiment), check_name("RUN", run))).fetchall()
    else:
        name = check_name("RUN", run)
        rows = conn.execute(_RUNS + " WHERE r.name = ? ORDER BY e.name", (name,)).fetchall() or conn.execute(
            _RUNS + " WHERE r.trial_component_name = ?", (name,)).fetchall()
    if not rows:
        raise RunNotFoundError(f"no run named {ref!r} in the local store: `sagerun runs` lists them")
    if len(rows) > 1:
        matches = [RunInfo(*row).ref for row in rows]
        raise AmbiguousRunError(f"{ref!r} names {len(matches)} runs: {', '.join(matches)}; "
                                "name one as EXPERIMENT/RUN", matches)
    return RunInfo(*rows[0])


def children(conn: sqlite3.Connection, info: RunInfo) -> list[str]:
    """The ``experiment/run`` names of the child runs of ``info``, oldest first."""
    return [run.ref for run in list_runs(conn, info.experiment) if run.parent == info.trial_component_name]


def metric_summaries(conn: sqlite3.Connection, run_id: int) -> list[MetricSummary]:
    """Count, min, max and last value of each metric of run ``run_id``, by name; read from the
    summaries kept beside each block, not from the points."""
    rows = conn.execute(
        """
        SELECT s.name, sum(m.count), min(m.min), max(m.max),
               (SELECT last_value FROM metrics WHERE series_id = s.id ORDER BY id DESC LIMIT 1),
               (SELECT last_step FROM metrics WHERE series_id = s.id ORDER BY id DESC LIMIT 1),
               (SELECT last_timestamp FROM metrics WHERE series_id = s.id ORDER BY id DESC LIMIT 1)
        FROM series s JOIN metrics m ON m.series_id = s.id
        WHERE s.run_id = ? GROUP BY s.id ORDER BY s.name
        """, (run_id,))
    return [MetricSummary(*row) for row in rows]


def read_metrics(conn: sqlite3.Connection, run_id: int, *, after: int = 0,
                 through: int | None = None) -> Iterator[Series]:
    """Every metric of run ``run_id``, by name, with its points in the order they were stored; only
    those of blocks with ids in ``(after, through]`` when given."""
    for series_id, name in conn.execute("SELECT id, name FROM series WHERE run_id = ? ORDER BY name",
                                        (run_id,)).fetchall():
        series = read_series(conn, series_id, name, after=after, through=through)
        if len(series.values):
            yield series


def iso(seconds: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC time, for people and JSON."""
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat()
