"""Store · the local store's model registry: the versions ``run.register_model`` adds, by group."""

from __future__ import annotations

import json
import sqlite3
import time

from .._model.registry import ModelRequest, ModelVersion
from .db import transaction

_COLUMNS = "name, version, trial_component_name, model_data, approval_status"


def add_model(conn: sqlite3.Connection, request: ModelRequest, model_data: str,
              trial_component_name: str) -> ModelVersion:
    """Add the next version of ``request.group``, in one transaction (two runs registering at once
    get two versions)."""
    with transaction(conn):
        (latest,) = conn.execute("SELECT coalesce(max(version), 0) FROM models WHERE name = ?",
                                 (request.group,)).fetchone()
        conn.execute(
            "INSERT INTO models (name, version, trial_component_name, model_data, description, image_uri, "
            "approval_status, tags, created_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (request.group, latest + 1, trial_component_name, model_data, request.description, request.image_uri,
             request.approval_status, json.dumps(request.tags), time.time()))
    return _version(request.group, latest + 1, trial_component_name, model_data, request.approval_status)


def list_models(conn: sqlite3.Connection, group: str | None = None, *, run: str | None = None) -> list[ModelVersion]:
    """Every version, or those of ``group``, or registered from the run ``run`` (a trial component
    name), by group then version."""
    where = [(column, value) for column, value in (("name", group), ("trial_component_name", run)) if value]
    clause = ("WHERE " + " AND ".join(f"{column} = ?" for column, _ in where)) if where else ""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM models {clause} ORDER BY name, version",
                        [value for _, value in where]).fetchall()
    return [_version(*row) for row in rows]


def _version(group: str, version: int, run: str, model_data: str, approval_status: str) -> ModelVersion:
    return ModelVersion(group, version, f"models:/{group}/{version}", model_data, approval_status, run)
