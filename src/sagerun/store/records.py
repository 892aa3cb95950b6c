"""Store · runs in the local store: a ``RunRecord`` in, a ``RunRecord`` out.

Parameters are stored as text with their type, and tags as JSON; both are read back by parsing
(``int``, ``float``, orjson), never by evaluating anything.
"""

from __future__ import annotations

import datetime
import sqlite3
import time
from typing import Any

import orjson

from .._model.records import Artifact, ParameterValue, RunRecord
from .._model.tags import as_dict, as_list
from .db import opened, transaction

_PARSERS = {"str": str, "int": int, "float": float}


def open_run(conn: sqlite3.Connection, record: RunRecord) -> tuple[int, RunRecord]:
    """Load the run named by ``record`` or create it with its experiment; return its id and the
    record with what was stored merged in (stored parameters and artifacts fill in, the record's win).

    Raises:
        sqlite3.Error: the database could not be read or written.
    """
    now = time.time()
    with transaction(conn):
        conn.execute(
            "INSERT INTO experiments (name, display_name, created_time) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING",
            (record.experiment_name, record.experiment_display_name, now),
        )
        experiment_id = conn.execute(
            "SELECT id FROM experiments WHERE name = ?", (record.experiment_name,)).fetchone()[0]
        found = conn.execute("SELECT id FROM runs WHERE trial_component_name = ?",
                             (record.trial_component_name,)).fetchone()
        if found is None:
            cursor = conn.execute(
                "INSERT INTO runs (experiment_id, name, trial_name, trial_component_name, display_name, tags, "
                "parent, created_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (experiment_id, record.run_name, record.trial_name, record.trial_component_name,
                 record.run_display_name, orjson.dumps(record.tags).decode(), record.parent, now),
            )
            return int(cursor.lastrowid), record  # type: ignore[arg-type]
        run_id = int(found[0])
    stored = load_run(conn, run_id)
    for name, value in stored.parameters.items():
        record.parameters.setdefault(name, value)
    for source, target in ((stored.input_artifacts, record.input_artifacts),
                           (stored.output_artifacts, record.output_artifacts)):
        for name, artifact in source.items():
            target.setdefault(name, artifact)
    record.start_time = record.start_time or stored.start_time
    record.run_display_name = record.run_display_name or stored.run_display_name
    record.tags = as_list(as_dict(stored.tags) | as_dict(record.tags))
    record.parent = record.parent or stored.parent
    return run_id, record


def save_run(conn: sqlite3.Connection, run_id: int, record: RunRecord) -> None:
    """Replace the stored state of run ``run_id`` (status, times, tags, parameters, artifacts) by
    ``record``'s, in one transaction.

    Raises:
        sqlite3.Error: the database could not be written.
    """
    with transaction(conn):
        conn.execute(
            "UPDATE runs SET display_name = ?, tags = ?, parent = COALESCE(?, parent), status = ?, "
            "status_message = ?, start_time = ?, end_time = ? WHERE id = ?",
            (record.run_display_name, orjson.dumps(record.tags).decode(), record.parent, record.status,
             record.status_message, _epoch(record.start_time), _epoch(record.end_time), run_id),
        )
        conn.execute("DELETE FROM parameters WHERE run_id = ?", (run_id,))
        conn.executemany("INSERT INTO parameters (run_id, name, value, type) VALUES (?, ?, ?, ?)",
                         [(run_id, name, *_parameter_row(value)) for name, value in record.parameters.items()])
        conn.execute("DELETE FROM artifacts WHERE run_id = ?", (run_id,))
        conn.executemany(
            "INSERT INTO artifacts (run_id, is_output, name, value, media_type) VALUES (?, ?, ?, ?, ?)",
            [(run_id, is_output, name, artifact.value, artifact.media_type)
             for is_output, artifacts in ((0, record.input_artifacts), (1, record.output_artifacts))
             for name, artifact in artifacts.items()],
        )


def add_tags(conn: sqlite3.Connection, run_id: int, tags: dict[str, str]) -> None:
    """Set ``tags`` on run ``run_id``, keeping its others: what a process that does not own the
    run may write."""
    with transaction(conn):
        (raw,) = conn.execute("SELECT tags FROM runs WHERE id = ?", (run_id,)).fetchone()
        merged = as_dict(_tags(raw)) | tags
        conn.execute("UPDATE runs SET tags = ? WHERE id = ?", (orjson.dumps(as_list(merged)).decode(), run_id))


def load_run(conn: sqlite3.Connection, run_id: int) -> RunRecord:
    """The stored run ``run_id`` as a ``RunRecord``.

    Raises:
        KeyError: there is no run with that id.
        sqlite3.Error: the database could not be read.
    """
    row = conn.execute(
        "SELECT e.name, e.display_name, r.name, r.trial_name, r.trial_component_name, r.display_name, r.tags, "
        "r.status, r.status_message, r.start_time, r.end_time, r.parent FROM runs r JOIN experiments e "
        "ON e.id = r.experiment_id WHERE r.id = ?", (run_id,)).fetchone()
    if row is None:
        raise KeyError(run_id)
    record = RunRecord(
        experiment_name=row[0], experiment_display_name=row[1], run_name=row[2], trial_name=row[3],
        trial_component_name=row[4], run_display_name=row[5], tags=_tags(row[6]), status=row[7],
        status_message=row[8], start_time=_datetime(row[9]), end_time=_datetime(row[10]), parent=row[11],
    )
    record.parameters = load_parameters(conn, run_id)
    for is_output, name, value, media_type in conn.execute(
            "SELECT is_output, name, value, media_type FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,)):
        target = record.output_artifacts if is_output else record.input_artifacts
        target[name] = Artifact(value, media_type)
    return record


def load_parameters(conn: sqlite3.Connection, run_id: int) -> dict[str, ParameterValue]:
    """The parameters of run ``run_id``, by name, with the types they were logged with."""
    return {name: _PARSERS[kind](value) for name, value, kind in conn.execute(
        "SELECT name, value, type FROM parameters WHERE run_id = ? ORDER BY name", (run_id,))}


def _parameter_row(value: ParameterValue) -> tuple[str, str]:
    if isinstance(value, str):
        return value, "str"
    if isinstance(value, int):
        return str(value), "int"
    return repr(float(value)), "float"  # repr round-trips a double exactly


def _tags(raw: str) -> list[dict[str, str]]:
    tags: Any = orjson.loads(raw)
    return [dict(t) for t in tags] if isinstance(tags, list) else []


def _epoch(moment: datetime.datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _datetime(seconds: float | None) -> datetime.datetime | None:
    return None if seconds is None else datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


def keep_unsaved(store_path: str, record: RunRecord, reason: str) -> None:
    """Keep ``record`` (a SageMaker run whose final save failed) in the local store, for
    ``sagerun sync`` to save to SageMaker later.

    Raises:
        sqlite3.Error, OSError: the store could not be written.
    """
    with opened(store_path, create=True) as conn:
        run_id, _ = open_run(conn, record)
        save_run(conn, run_id, record)
        with transaction(conn):
            conn.execute("INSERT OR REPLACE INTO unsaved_runs (run_id, reason, added_time) VALUES (?, ?, ?)",
                         (run_id, reason, time.time()))


def unsaved_runs(conn: sqlite3.Connection) -> list[tuple[int, RunRecord]]:
    """The runs ``keep_unsaved`` kept, oldest first, with their ids for ``forget_unsaved``."""
    ids = [row[0] for row in conn.execute("SELECT run_id FROM unsaved_runs ORDER BY added_time")]
    return [(run_id, load_run(conn, run_id)) for run_id in ids]


def forget_unsaved(conn: sqlite3.Connection, run_id: int) -> None:
    """Run ``run_id`` is saved in SageMaker now."""
    with transaction(conn):
        conn.execute("DELETE FROM unsaved_runs WHERE run_id = ?", (run_id,))
