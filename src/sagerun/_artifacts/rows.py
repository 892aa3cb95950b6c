"""Artifacts · tables that grow during a run (``log_row``), held in memory and stored as ``log_table`` stores them.

A row is checked at the call and appended, with no I/O: the training loop may log one a step. The
run writes each table that gained rows since its last write on ``flush()`` and at close, whole,
as one table document (a preview still reads only its first lines). Writing per row would upload
the growing table again and again; writing at flush and close uploads it once per flush.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any, Mapping

import numpy as np

_CELL = (str, int, float, bool, datetime.date, np.generic)


class GrowingTables:
    """The rows each table of one run has gathered, and which tables changed since they were taken."""

    def __init__(self) -> None:
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._changed: set[str] = set()
        self._lock = threading.Lock()  # the sync facade logs from the caller's thread, flushes from another

    def add(self, name: object, columns: Mapping[str, Any]) -> None:
        """Append a row of ``columns`` (column name to one cell) to table ``name``.

        Raises:
            TypeError: ``name`` is not a str, or a cell is not a str, number, bool, date or ``None``.
            ValueError: the row has no column.
        """
        if not isinstance(name, str):
            raise TypeError(f"table name must be a str; got {type(name).__name__}")
        if not columns:
            raise ValueError(f"log_row({name!r}) got no columns: pass them as keywords, log_row(name, loss=0.1)")
        for column, cell in columns.items():
            if cell is not None and not isinstance(cell, _CELL):
                raise TypeError(f"table {name!r}, column {column!r}: a cell must be a str, number, bool, date or "
                                f"None; got {type(cell).__name__}")
        with self._lock:
            self._rows.setdefault(name, []).append(dict(columns))
            self._changed.add(name)

    def take_changed(self) -> dict[str, list[dict[str, Any]]]:
        """The rows so far of every table that gained rows since the last call."""
        with self._lock:
            changed = {name: list(self._rows[name]) for name in self._changed}
            self._changed.clear()
        return changed

    def put_back(self, names: set[str]) -> None:
        """Mark ``names`` changed again: their write failed, and the next flush or close retries it."""
        with self._lock:
            self._changed |= names
