"""Read · the local store read as a search reads it: the runs' rows in a few SQL statements, and
metric histories from the stored blocks, each in a worker thread."""

from __future__ import annotations

import math
import sqlite3
from typing import Any, Callable, Sequence

import anyio.to_thread

from .._model.tags import as_dict
from ..store import db, search
from ..store.metrics import read_series
from .query import Query
from .rows import History, MetricStats, RunRow, utc


class LocalReader:
    """Reads the local store at ``store_path``."""

    def __init__(self, store_path: str) -> None:
        self.store_path = store_path

    async def __aenter__(self) -> LocalReader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def _read(self, read: Callable[[sqlite3.Connection], Any]) -> Any:
        def answer() -> Any:
            with db.opened(self.store_path) as conn:
                return read(conn)

        return await anyio.to_thread.run_sync(answer)

    async def runs(self, query: Query, *, all_stats: bool = False) -> list[RunRow]:
        """The rows of the runs ``query`` may keep: experiments and status filtered in SQL (every
        statistic is kept: ``all_stats`` changes nothing)."""
        return await self._read(lambda conn: _rows(conn, query))  # type: ignore[no-any-return]

    async def histories(self, rows: Sequence[RunRow], names: Sequence[str] | None) -> dict[tuple[str, str], History]:
        """The history of each metric of ``names`` (all when ``None``) of each run of ``rows``."""
        return await self._read(lambda conn: _histories(conn, rows, names))  # type: ignore[no-any-return]


def _rows(conn: sqlite3.Connection, query: Query) -> list[RunRow]:
    names = sorted({name for _, name in query.runs}) if query.runs is not None else None
    stored = search.runs(conn, query.experiment_names, query.statuses, names)
    ids = [run.id for run in stored]
    parameters, summaries = search.parameters(conn, ids), search.summaries(conn, ids)
    return [RunRow(
        experiment=run.experiment, run=run.name, run_group=run.trial_name,
        trial_component_name=run.trial_component_name, status=run.status, status_message=run.status_message,
        start_time=utc(run.start_time), end_time=utc(run.end_time), created_time=utc(run.created_time),
        parent=run.parent, tags=as_dict(run.tags), parameters=parameters[run.id],
        metrics={name: _stats(s) for name, s in sorted(summaries[run.id].items())},
    ) for run in stored]


def _histories(conn: sqlite3.Connection, rows: Sequence[RunRow],
               names: Sequence[str] | None) -> dict[tuple[str, str], History]:
    found: dict[tuple[str, str], History] = {}
    for row in rows:
        series = conn.execute("SELECT s.id, s.name FROM series s JOIN runs r ON r.id = s.run_id "
                              "WHERE r.trial_component_name = ? ORDER BY s.name", (row.trial_component_name,))
        for series_id, name in series.fetchall():
            if names is None or name in names:
                points = read_series(conn, series_id, name)
                found[(row.trial_component_name, name)] = History(points.steps.astype("int64"), points.timestamps,
                                                                  points.values)
    return found


def _stats(stored: search.StoredSummary) -> MetricStats:
    if not stored.count:
        return MetricStats(count=0)
    mean = stored.total / stored.count
    return MetricStats(stored.last, stored.min, stored.max, mean, stored.count,
                       math.sqrt(max(0.0, stored.squares / stored.count - mean * mean)))
