"""Store · the local store's database file: where it lives, how it is opened, and its schema.

One SQLite file, ``sagerun.db``, in the session's ``store_path``: WAL journal so that the CLI can
read while a run writes, ``synchronous=NORMAL`` because a crash may lose the last transaction but
never corrupts the file (and a training process is not a bank). Every connection is opened by
``connect`` so that every one has the same settings.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from typing import Iterator

from .._model.errors import SagerunError

DB_NAME = "sagerun.db"
SCHEMA_VERSION = 4  # 2: unsaved_runs; 3: runs.parent; 4: models
# What takes a store of the version before each key to it; the tables it lacked come from _SCHEMA.
_UPGRADES = {3: "ALTER TABLE runs ADD COLUMN parent TEXT;"}
_BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT,
    created_time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    name TEXT NOT NULL,
    trial_name TEXT NOT NULL,
    trial_component_name TEXT NOT NULL UNIQUE,
    display_name TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    status TEXT,
    status_message TEXT,
    start_time REAL,
    end_time REAL,
    created_time REAL NOT NULL,
    pushed_through INTEGER NOT NULL DEFAULT 0,
    parent TEXT,  -- the parent run's trial component name, for a child run
    UNIQUE (experiment_id, name)
);
CREATE INDEX IF NOT EXISTS runs_by_name ON runs(name);
CREATE TABLE IF NOT EXISTS parameters (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('str', 'int', 'float')),
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS artifacts (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    is_output INTEGER NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    media_type TEXT,
    PRIMARY KEY (run_id, is_output, name)
) WITHOUT ROWID;
-- A series is one metric of one run.
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    UNIQUE (run_id, name)
);
-- Points are stored in blocks, one row per series per batch written: steps (int32, -1 for none),
-- timestamps (float64 epoch seconds) and values (float64) as little-endian arrays. A row per point
-- costs SQLite ~4 us to insert on a small machine, a block ~1 ms for thousands of points; the
-- summaries beside the arrays answer `show` and `compare` without reading them. id is the rowid:
-- the order blocks were written in, stable across VACUUM, and what "last" means.
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL REFERENCES series(id),
    count INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    last_value REAL NOT NULL,
    last_step INTEGER,
    last_timestamp REAL NOT NULL,
    steps BLOB NOT NULL,
    timestamps BLOB NOT NULL,
    "values" BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_series ON metrics(series_id);
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY,
    trial_component_name TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    step INTEGER,
    timestamp REAL NOT NULL,
    reason TEXT NOT NULL,
    added_time REAL NOT NULL,
    refused TEXT
);
CREATE INDEX IF NOT EXISTS spool_pending ON spool(trial_component_name, id) WHERE refused IS NULL;
-- Model versions registered from runs (run.register_model), numbered from 1 in each group.
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    trial_component_name TEXT NOT NULL,
    model_data TEXT NOT NULL,
    description TEXT,
    image_uri TEXT,
    approval_status TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    created_time REAL NOT NULL,
    UNIQUE (name, version)
);
CREATE TABLE IF NOT EXISTS unsaved_runs (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    reason TEXT NOT NULL,
    added_time REAL NOT NULL
);
"""


class NoStoreError(SagerunError):
    """There is no local store where one was looked for."""

    def __init__(self, store_path: str) -> None:
        super().__init__(f"no local store at {store_path}: run `sagerun demo` or log a run first")
        self.store_path = store_path


class StoreVersionError(SagerunError):
    """The store was written by a newer sagerun than this one."""


def database_path(store_path: str) -> str:
    return os.path.join(store_path, DB_NAME)


def connect(store_path: str, *, create: bool = True) -> sqlite3.Connection:
    """Open the store's database, creating the folder (0700), the file (0600) and the schema if asked.

    The connection is in autocommit mode (write inside ``transaction``) and may be used from any
    thread, one at a time: the caller serializes.

    Raises:
        NoStoreError: ``create`` is false and there is no database in ``store_path``.
        StoreVersionError: the database has a newer schema than this sagerun knows.
        sqlite3.Error, OSError: the file cannot be opened or written.
    """
    path = database_path(store_path)
    if not os.path.exists(path):
        if not create:
            raise NoStoreError(store_path)
        _create_file(store_path, path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp_store = MEMORY")
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def opened(store_path: str, *, create: bool = False) -> Iterator[sqlite3.Connection]:
    """``connect`` for the length of a ``with`` block, closed after it; raises as ``connect`` does."""
    conn = connect(store_path, create=create)
    try:
        yield conn
    finally:
        conn.close()


def _create_file(store_path: str, path: str) -> None:
    if not os.path.isdir(store_path):
        os.makedirs(store_path, mode=0o700, exist_ok=True)
        os.chmod(store_path, 0o700)  # makedirs' mode is filtered by the umask
    # SQLite gives its -wal and -shm files the database file's permissions.
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"the local store {path} has schema version {version}, newer than this sagerun's "
            f"{SCHEMA_VERSION}: upgrade sagerun (pip install -U sagerun) to read it"
        )
    # IF NOT EXISTS and the immediate transaction make two processes creating the store at once harmless.
    # A new file (version 0) gets the whole schema; an older store its upgrades, then what it lacks.
    upgrades = "".join(sql for to, sql in sorted(_UPGRADES.items()) if 0 < version < to)
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{upgrades}{_SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\n"
                           "COMMIT;")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        # Another process upgraded the same store between our read of its version and our lock.
        if isinstance(exc, sqlite3.OperationalError) and upgrades and \
                conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        raise


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction, taken at once (``BEGIN IMMEDIATE``) so that it never fails half-way on a
    lock; committed on success, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
