"""Store · the local store read for a search: many runs at once, with their parameters and the
summary of each metric, in a few statements whatever the number of runs."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any, Sequence

import numpy as np

from .records import _PARSERS, _tags

_FLOAT = np.dtype("<f8")


@dataclasses.dataclass(frozen=True)
class StoredRun:
    id: int
    experiment: str
    name: str
    trial_name: str
    trial_component_name: str
    tags: list[dict[str, str]]
    status: str | None
    status_message: str | None
    start_time: float | None
    end_time: float | None
    created_time: float
    parent: str | None


@dataclasses.dataclass(frozen=True)
class StoredSummary:
    """One metric of one run: from the block summaries, and the sum of its values for the mean."""

    count: int
    min: float
    max: float
    last: float
    total: float
    squares: float
    """the sum of the values' squares, for their deviation"""


def runs(conn: sqlite3.Connection, experiments: Sequence[str] | None, statuses: Sequence[str],
         names: Sequence[str] | None = None) -> list[StoredRun]:
    """The runs of ``experiments`` (all when ``None``) whose status is one of ``statuses`` (any when
    empty), and whose name is one of ``names`` when given."""
    where, arguments = [], []
    if names is not None:
        where.append(f"r.name IN ({', '.join('?' * len(names))})")
        arguments += list(names)
    if experiments is not None:
        where.append(f"e.name IN ({', '.join('?' * len(experiments))})")
        arguments += list(experiments)
    if statuses:
        where.append(f"r.status IN ({', '.join('?' * len(statuses))})")
        arguments += list(statuses)
    rows = conn.execute(
        "SELECT r.id, e.name, r.name, r.trial_name, r.trial_component_name, r.tags, r.status, r.status_message, "
        "r.start_time, r.end_time, r.created_time, r.parent FROM runs r JOIN experiments e ON e.id = r.experiment_id"
        + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.created_time, r.id", arguments)
    return [StoredRun(row[0], row[1], row[2], row[3], row[4], _tags(row[5]), *row[6:]) for row in rows]


def parameters(conn: sqlite3.Connection, run_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The parameters of each run of ``run_ids``, with the types they were logged with."""
    found: dict[int, dict[str, Any]] = {run_id: {} for run_id in run_ids}
    for run_id, name, value, kind in _each(conn, "SELECT run_id, name, value, type FROM parameters "
                                                 "WHERE run_id IN ({}) ORDER BY run_id, name", run_ids):
        found[run_id][name] = _PARSERS[kind](value)
    return found


def summaries(conn: sqlite3.Connection, run_ids: Sequence[int]) -> dict[int, dict[str, StoredSummary]]:
    """Each metric of each run of ``run_ids``: count, min, max and last from the blocks' summaries,
    and the total of the values and of their squares, from the value arrays (in numpy, a block at a time)."""
    found: dict[int, dict[str, StoredSummary]] = {run_id: {} for run_id in run_ids}
    totals: dict[int, tuple[float, float]] = {}
    for series_id, raw in _each(conn, 'SELECT m.series_id, m."values" FROM metrics m JOIN series s '
                                      'ON s.id = m.series_id WHERE s.run_id IN ({})', run_ids):
        values = np.frombuffer(raw, _FLOAT)
        total, squares = totals.get(series_id, (0.0, 0.0))
        totals[series_id] = (total + float(values.sum()), squares + float(np.dot(values, values)))
    query = """
        SELECT s.run_id, s.id, s.name, sum(m.count), min(m.min), max(m.max),
               (SELECT last_value FROM metrics WHERE series_id = s.id ORDER BY id DESC LIMIT 1)
        FROM series s JOIN metrics m ON m.series_id = s.id WHERE s.run_id IN ({}) GROUP BY s.id"""
    for run_id, series_id, name, count, low, high, last in _each(conn, query, run_ids):
        found[run_id][name] = StoredSummary(count, low, high, last, *totals.get(series_id, (0.0, 0.0)))
    return found


def _each(conn: sqlite3.Connection, query: str, ids: Sequence[int], chunk: int = 900) -> Any:
    # In chunks: SQLite's bound variables are limited (999 before 3.32).
    for start in range(0, len(ids), chunk):
        part = list(ids[start:start + chunk])
        yield from conn.execute(query.format(", ".join("?" * len(part))), part)



def highest_steps(conn: sqlite3.Connection, run_id: int) -> dict[str, int]:
    """The highest step each metric of run ``run_id`` has, read from its blocks' last steps."""
    return dict(conn.execute("SELECT s.name, max(m.last_step) FROM series s JOIN metrics m ON m.series_id = s.id "
                             "WHERE s.run_id = ? AND m.last_step IS NOT NULL GROUP BY s.id", (run_id,)).fetchall())
