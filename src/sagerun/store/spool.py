"""Store · the spool: points that could not be delivered to SageMaker, kept until ``sagerun sync`` sends them.

It is a table of the local store, so nothing is lost when a run ends with the endpoint down, and
it survives the process. Points refused for good by the API (``VALIDATION_ERROR``,
``METRIC_LIMIT_EXCEEDED``) are marked with the code and kept aside rather than deleted.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Iterable, NamedTuple, Sequence

from .._model.answers import DeadLetter, refusal_code
from .._model.points import Point
from .._model.session import Session
from .db import connect, transaction

logger = logging.getLogger("sagerun")

_CHUNK = 500  # ids per statement, under SQLite's limit on bound variables


class SpoolBatch(NamedTuple):
    """Pending points of one trial component, oldest first, with their row ids (for ``remove``)."""

    trial_component_name: str
    ids: list[int]
    points: list[Point]


class Spool:
    """The spool of the local store in ``store_path``; every method is thread-safe and blocking.

    Opening creates the store if there is none, unless ``create`` is false. Use as a context
    manager, or call ``close``.

    Raises:
        NoStoreError: ``create`` is false and there is no store in ``store_path``.
        sqlite3.Error, OSError: the store cannot be opened or created.
    """

    def __init__(self, store_path: str, *, create: bool = True) -> None:
        self.store_path = store_path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = connect(store_path, create=create)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"the spool of {self.store_path} is closed")
        return self._conn

    def add(self, trial_component_name: str, points: Sequence[Point], reason: str,
            refused: str | None = None) -> range:
        """Keep ``points`` of ``trial_component_name`` with the ``reason`` they were not delivered
        (set aside at once with the API's code if ``refused``); return their row ids, in the order
        of ``points``.

        Raises:
            sqlite3.Error: they could not be written (nothing of them is kept).
        """
        now = time.time()
        rows = [(trial_component_name, name, value, step, timestamp, reason, now, refused)
                for name, value, step, timestamp in points]
        with self._lock, transaction(self._db()) as conn:
            conn.executemany("INSERT INTO spool (trial_component_name, name, value, step, timestamp, reason, "
                             "added_time, refused) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            # The transaction holds SQLite's write lock (BEGIN IMMEDIATE), so no other writer can
            # interleave: the rows got consecutive ids ending at the last one inserted.
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        return range(last - len(rows) + 1, last + 1)

    def pending(self, limit: int) -> list[SpoolBatch]:
        """Up to ``limit`` pending points (not refused), grouped by trial component, oldest first.

        Raises:
            ValueError: ``limit`` is not a positive integer.
        """
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer; got {limit!r}")
        with self._lock:
            rows = self._db().execute(
                "SELECT id, trial_component_name, name, value, step, timestamp FROM spool "
                "WHERE refused IS NULL ORDER BY trial_component_name, id LIMIT ?", (limit,)).fetchall()
        batches: list[SpoolBatch] = []
        for row_id, tc, name, value, step, timestamp in rows:
            if not batches or batches[-1].trial_component_name != tc:
                batches.append(SpoolBatch(tc, [], []))
            batches[-1].ids.append(row_id)
            batches[-1].points.append((name, value, step, timestamp))
        return batches

    def remove(self, ids: Iterable[int]) -> None:
        """Delete the rows ``ids`` (delivered points)."""
        self._by_ids("DELETE FROM spool WHERE id IN ({})", ids)

    def mark_refused(self, ids: Iterable[int], code: str) -> None:
        """Set the rows ``ids`` aside as refused for good with the API's ``code``; ``pending`` skips them."""
        self._by_ids("UPDATE spool SET refused = ? WHERE id IN ({})", ids, code)

    def release_refused(self) -> int:
        """Make every refused point pending again (to retry once the cause is fixed); return how many."""
        with self._lock, transaction(self._db()) as conn:
            return conn.execute("UPDATE spool SET refused = NULL WHERE refused IS NOT NULL").rowcount

    def count(self) -> int:
        """How many points are pending."""
        with self._lock:
            return int(self._db().execute("SELECT count(*) FROM spool WHERE refused IS NULL").fetchone()[0])

    def refused(self) -> dict[str, int]:
        """How many points are set aside, by refusal code."""
        with self._lock:
            return dict(self._db().execute(
                "SELECT refused, count(*) FROM spool WHERE refused IS NOT NULL GROUP BY refused ORDER BY refused"))

    def rows_of(self, trial_component_name: str) -> tuple[list[int], list[dict[str, object]]]:
        """Every row of ``trial_component_name``, pending or set aside, oldest first: their ids, and
        each as a document ``import_rows`` takes back (to carry them to another store)."""
        with self._lock:
            rows = self._db().execute(
                "SELECT id, name, value, step, timestamp, reason, refused FROM spool WHERE trial_component_name = ? "
                "ORDER BY id", (trial_component_name,)).fetchall()
        documents = [{"trial_component_name": trial_component_name, "name": name, "value": value, "step": step,
                      "timestamp": timestamp, "reason": reason, "refused": refused}
                     for _, name, value, step, timestamp, reason, refused in rows]
        return [row[0] for row in rows], documents

    def import_rows(self, source: str, documents: Iterable[dict[str, object]]) -> int | None:
        """Add the rows of ``documents`` (as ``rows_of`` gives them) from ``source``, once: a source
        imported before is skipped (``None``); else how many rows were added.

        Raises:
            ValueError: a document lacks a field of a row.
            sqlite3.Error: they could not be written (nothing of this source is kept).
        """
        now = time.time()
        try:
            rows = [(d["trial_component_name"], d["name"], d["value"], d["step"], d["timestamp"], d["reason"], now,
                     d.get("refused")) for d in documents]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{source} holds a row that is not a spool row: {exc!r}") from None
        with self._lock, transaction(self._db()) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS imported (source TEXT PRIMARY KEY, added_time REAL)")
            if conn.execute("SELECT 1 FROM imported WHERE source = ?", (source,)).fetchone():
                return None
            conn.executemany("INSERT INTO spool (trial_component_name, name, value, step, timestamp, reason, "
                             "added_time, refused) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            conn.execute("INSERT INTO imported (source, added_time) VALUES (?, ?)", (source, now))
        return len(rows)

    def _by_ids(self, sql: str, ids: Iterable[int], *leading: object) -> None:
        ids = list(ids)
        with self._lock, transaction(self._db()) as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start:start + _CHUNK]
                conn.execute(sql.format(",".join("?" * len(chunk))), (*leading, *chunk))


class SpoolJournal:
    """Durable mode's journal: points are written to the spool before they are sent and removed once
    delivered, so that ``sagerun sync`` delivers what a killed process had not (the engine's
    ``Journal``). Thread-safe; ``close()`` when the run ends."""

    def __init__(self, store_path: str) -> None:
        self._spool = Spool(store_path)

    def write(self, trial_component_name: str, points: Sequence[Point]) -> Sequence[int]:
        return self._spool.add(trial_component_name, points, "durable mode: not yet delivered")

    def forget(self, ids: Sequence[int]) -> None:
        self._spool.remove(ids)

    def close(self) -> None:
        self._spool.close()


class SpoolDeadLetter:
    """The default dead-letter hook of a remote backend: undelivered points kept in the spool of
    ``store_path`` (refused ones set aside with their code), for ``sagerun sync``.

    The spool is opened for each call and closed after it: dead letters are rare, and a hook that
    holds no connection needs no closing. If the spool cannot be written the hook raises, and the
    engine logs the loss. It blocks its caller for the write (a few milliseconds). It says nothing
    per call: the run's one summary at close says how many points are kept and how to send them.
    """

    def __init__(self, store_path: str) -> None:
        self.store_path = store_path

    def __call__(self, trial_component_name: str, points: Sequence[Point], reason: str) -> None:
        with Spool(self.store_path) as spool:
            spool.add(trial_component_name, points, reason, refused=refusal_code(reason))
        logger.debug("sagerun: %d points of %s kept in the spool of %s (%s)", len(points), trial_component_name,
                     self.store_path, reason)


def spool_dead_letter(session: Session) -> DeadLetter:
    """The hook that keeps undelivered points in the spool of ``session.store_path``."""
    return SpoolDeadLetter(session.store_path)
