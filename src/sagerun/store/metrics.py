"""Store · metric points in the local store: written in blocks of arrays, read back as arrays or points.

A block holds the points of one series (one metric of one run) from one batch: steps as int32
(-1 where a point has none), timestamps and values as float64, all little-endian. Reading decodes
them with ``numpy.frombuffer``: plain numbers, nothing evaluated.
"""

from __future__ import annotations

import sqlite3
from operator import itemgetter
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from .._model.points import Point
from .db import transaction

_STEP = np.dtype("<i4")
_FLOAT = np.dtype("<f8")
NO_STEP = -1
_MAX_ID = 2**63 - 1
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ROWS_PER_STATEMENT = 500  # 5,000 bound variables, well under SQLite's limit (32,766 since 3.32)


class Series(NamedTuple):
    """All points of one metric of one run, in the order they were stored."""

    name: str
    steps: np.ndarray
    """int32, ``NO_STEP`` where a point was logged without a step"""
    timestamps: np.ndarray
    values: np.ndarray

    def points(self) -> Iterator[Point]:
        """The points as ``(name, value, step, timestamp)`` tuples, ``None`` for no step."""
        name = self.name
        for step, timestamp, value in zip(self.steps.tolist(), self.timestamps.tolist(), self.values.tolist()):
            yield name, value, None if step == NO_STEP else step, timestamp


class MetricWriter:
    """Inserts the points of runs into the ``metrics`` table, one block per metric per batch.

    Remembers the id of every (run, metric name) series it has seen. Not thread-safe: its owner
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
        if not points:
            return
        blocks = _blocks(points)
        series = self._series.get(run_id, {})
        if not blocks.keys() <= series.keys():
            with transaction(self.conn):
                series = self._load_series(run_id, set(blocks))
            self._series[run_id] = series
        # One multi-row INSERT is one statement, so atomic on its own, and one release of the GIL:
        # each time the writer thread takes the GIL back while the training loop runs costs it up
        # to the interpreter's switch interval (5 ms).
        rows = [(series[name], *row) for name, row in blocks.items()]
        if len(rows) <= _ROWS_PER_STATEMENT:
            self._insert_rows(rows)
            return
        with transaction(self.conn):  # so many metric names that the bound variables need several statements
            for start in range(0, len(rows), _ROWS_PER_STATEMENT):
                self._insert_rows(rows[start:start + _ROWS_PER_STATEMENT])

    def _insert_rows(self, rows: list[tuple[object, ...]]) -> None:
        self.conn.execute(
            'INSERT INTO metrics (series_id, count, min, max, last_value, last_step, last_timestamp, steps, '
            'timestamps, "values") VALUES ' + ", ".join([_ROW] * len(rows)),
            [value for row in rows for value in row],
        )

    def _load_series(self, run_id: int, names: set[str]) -> dict[str, int]:
        self.conn.executemany("INSERT INTO series (run_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
                              [(run_id, name) for name in names])
        return dict(self.conn.execute("SELECT name, id FROM series WHERE run_id = ?", (run_id,)).fetchall())


def _blocks(points: Sequence[Point]) -> dict[str, tuple[object, ...]]:
    """One row of the ``metrics`` table (less the series id) per metric name in ``points``."""
    # map/itemgetter/fromiter keep the per-point work in C: this runs under the GIL, beside the
    # training loop, so every microsecond per point here is one taken from it.
    count = len(points)
    all_values = np.fromiter(map(itemgetter(1), points), _FLOAT, count)
    all_times = np.fromiter(map(itemgetter(3), points), _FLOAT, count)
    try:
        all_steps = np.fromiter(map(itemgetter(2), points), _STEP, count)
    except TypeError:  # some points have no step
        all_steps = np.fromiter((NO_STEP if p[2] is None else p[2] for p in points), _STEP, count)
    names = list(map(itemgetter(0), points))
    unique = set(names)
    groups: dict[str, np.ndarray | slice]
    if len(unique) == 1:  # the usual case: a batch cut from one numpy block
        groups = {names[0]: slice(None)}
    else:
        codes = {name: code for code, name in enumerate(unique)}
        keys = np.fromiter(map(codes.__getitem__, names), np.int32, count)
        groups = {name: np.flatnonzero(keys == code) for name, code in codes.items()}
    rows = {}
    for name, where in groups.items():
        v, s, t = all_values[where], all_steps[where], all_times[where]
        last_step = int(s[-1])
        rows[name] = (len(v), float(v.min()), float(v.max()), float(v[-1]),
                      None if last_step == NO_STEP else last_step, float(t[-1]),
                      s.tobytes(), t.tobytes(), v.tobytes())
    return rows


def read_series(conn: sqlite3.Connection, series_id: int, name: str, *, after: int = 0,
                through: int | None = None) -> Series:
    """The points of series ``series_id`` (named ``name``), decoded from its blocks in order; only
    those of blocks with ids in ``(after, through]`` when given."""
    blocks = conn.execute('SELECT steps, timestamps, "values" FROM metrics WHERE series_id = ? AND id > ? '
                          'AND id <= ? ORDER BY id', (series_id, after, _MAX_ID if through is None else through)
                          ).fetchall()
    if not blocks:
        return Series(name, np.empty(0, _STEP), np.empty(0, _FLOAT), np.empty(0, _FLOAT))
    return Series(
        name,
        np.concatenate([np.frombuffer(b[0], dtype=_STEP) for b in blocks]),
        np.concatenate([np.frombuffer(b[1], dtype=_FLOAT) for b in blocks]),
        np.concatenate([np.frombuffer(b[2], dtype=_FLOAT) for b in blocks]),
    )
