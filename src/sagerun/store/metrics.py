"""Writing metric points to the local store, fast: one ``executemany`` per batch, ids cached."""

from __future__ import annotations

import sqlite3
from typing import Sequence

from .._ingest.points import Point
from .db import transaction


class MetricWriter:
    """Inserts the points of runs into the ``metrics`` table.

    Remembers the id of every (run, metric name) series it has seen so that a batch costs one set
    comprehension, one list comprehension and one ``executemany``. Not thread-safe: its owner
    serializes calls, as it does for the connection.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._series: dict[int, dict[str, int]] = {}

    def insert(self, run_id: int, points: Sequence[Point]) -> None:
        """Store ``points`` of run ``run_id`` in one transaction.

        Raises:
            sqlite3.Error: the database could not be written (nothing of the batch is stored).
        """
        series = self._series.get(run_id, {})
        with transaction(self.conn):
            if not {p[0] for p in points} <= series.keys():
                series = self._load_series(run_id, {p[0] for p in points})
            self.conn.executemany(
                "INSERT INTO metrics (series_id, step, timestamp, value) VALUES (?, ?, ?, ?)",
                [(series[name], step, timestamp, value) for name, value, step, timestamp in points],
            )
        # Cached only once committed: a rolled-back transaction may have created series that are gone.
        self._series[run_id] = series

    def _load_series(self, run_id: int, names: set[str]) -> dict[str, int]:
        self.conn.executemany("INSERT INTO series (run_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
                              [(run_id, name) for name in names])
        return dict(self.conn.execute("SELECT name, id FROM series WHERE run_id = ?", (run_id,)).fetchall())
