"""A local store as an older sagerun left it: one run logged now, then taken back a schema version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sagerun
import sagerun.sync


def older_store(store: Path, undo: str, version: int, **settings: object) -> sagerun.Session:
    """A session on ``store`` holding the run ``exp/before``, after ``undo`` (SQL that takes away
    what the later versions added) and with ``user_version`` set to ``version``."""
    session = sagerun.Session(backend="local", store=str(store), **settings)  # type: ignore[arg-type]
    with sagerun.sync.Run("exp", "before", session=session):
        pass
    conn = sqlite3.connect(store / "sagerun.db")
    conn.executescript(f"{undo}; PRAGMA user_version = {version};")
    conn.close()
    return session
