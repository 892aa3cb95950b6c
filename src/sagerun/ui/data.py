"""UI · what the UI's JSON endpoints answer, read from the local store: the runs, one run, one
metric's points (cut down to what a chart can show), a page of a table, a chart document, and
where a run's file is.

Each function takes an open connection and returns plain JSON values. ``LocalSource`` runs them
in a worker thread, one connection a request (SQLite connections are cheap, and a UI is
read-mostly); ``sagemaker_source.SageMakerSource`` answers the same calls from SageMaker.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any, Callable

import anyio.to_thread

import numpy as np

from .._artifacts.preview import artifact_kinds, chart_document, table_preview
from .._artifacts.storage import path_of_uri
from .._artifacts.tables import TablePreview
from .._model.tags import as_dict
from ..store import db, queries
from ..store.metrics import NO_STEP, read_series
from ..store.models import list_models
from ..store.records import load_parameters, load_run
from .downsample import DEFAULT_BUCKETS, downsample


def runs(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every run, newest first, with its tags and parameters (the runs page filters and compares)."""
    tags = {name: as_dict(json.loads(raw)) for name, raw in conn.execute("SELECT trial_component_name, tags FROM runs")}
    listed = []
    for info in reversed(queries.list_runs(conn)):
        listed.append({**info.as_json(), "ref": info.ref, "duration": info.duration,
                       "tags": tags.get(info.trial_component_name, {}),
                       "parameters": load_parameters(conn, info.id)})
    return listed


def run(conn: sqlite3.Connection, store_path: str, ref: str) -> dict[str, Any]:
    """One run: parameters, tags, parent and children, metric summaries, artifacts (each with its
    kind and, for a file of the store, the URL it downloads from), and the model versions it registered.

    Raises:
        RunNotFoundError, AmbiguousRunError: ``ref`` names no run, or several.
    """
    info = queries.find_run(conn, ref)
    record = load_run(conn, info.id)
    artifacts = {}
    for direction, held in (("input", record.input_artifacts), ("output", record.output_artifacts)):
        kinds = artifact_kinds(store_path, info.trial_component_name, held)
        artifacts[direction] = [
            {"name": name, "value": a.value, "media_type": a.media_type, "kind": kinds[name],
             "url": _file_url(store_path, info, a.value)} for name, a in held.items()]
    parent = None
    if record.parent:
        try:
            parent = queries.find_run(conn, record.parent).ref  # a trial component name finds its run
        except queries.RunNotFoundError:  # a parent this store does not hold
            pass
    return {**info.as_json(), "ref": info.ref, "duration": info.duration, "tags": as_dict(record.tags),
            "parameters": record.parameters, "parent_ref": parent, "children": queries.children(conn, info),
            "metrics": [s.as_json() for s in queries.metric_summaries(conn, info.id)], "artifacts": artifacts,
            "models": [version._asdict() for version in list_models(conn, run=info.trial_component_name)]}


def series(conn: sqlite3.Connection, ref: str, name: str, buckets: int = DEFAULT_BUCKETS) -> dict[str, Any]:
    """The points of metric ``name`` of run ``ref``: steps, timestamps and values, in the order
    logged, cut down to the first, lowest, highest and last of ``buckets`` equal runs of points
    when there are more than four times that (``total`` says how many there are).

    Raises:
        RunNotFoundError, AmbiguousRunError: see ``run``.
        KeyError: the run has no metric of that name.
    """
    info = queries.find_run(conn, ref)
    found = conn.execute("SELECT id FROM series WHERE run_id = ? AND name = ?", (info.id, name)).fetchone()
    if found is None:
        raise KeyError(f"run {info.ref} has no metric {name!r}")
    points = read_series(conn, found[0], name)
    return series_answer(info.ref, name, info.status, np.where(points.steps == NO_STEP, -1, points.steps),
                         points.timestamps, points.values, buckets)


def series_answer(ref: str, name: str, status: str | None, steps: np.ndarray, timestamps: np.ndarray,
                  values: np.ndarray, buckets: int) -> dict[str, Any]:
    """The JSON of a metric's points, from either source: cut down with ``downsample`` to what
    ``buckets`` pixels show, with ``total`` the count before; a step of -1 is a point without one."""
    keep = downsample(values, buckets)
    return {"run": ref, "name": name, "total": int(len(values)), "status": status, "steps": steps[keep].tolist(),
            "timestamps": timestamps[keep].tolist(), "values": values[keep].tolist()}


def table_page(store_path: str, ref: str, name: str, offset: int, limit: int) -> dict[str, Any]:
    """Rows ``offset`` to ``offset + limit`` of the table ``name`` of run ``ref``, its columns and
    its row count; a page deep in a table of a million rows reads the lines before it, and parses
    none of them.

    Raises:
        ArtifactNotFoundError, RunNotFoundError, AmbiguousRunError: no such run or artifact.
        ValueError: the artifact is not a table.
    """
    _, preview = table_preview(store_path, ref, name, limit, offset=offset)
    return page_answer(name, preview, offset)


def page_answer(name: str, preview: TablePreview, offset: int) -> dict[str, Any]:
    """The JSON of a page of a table, from either source."""
    return {"name": name, "title": preview.title, "columns": preview.column_names, "rows": preview.rows,
            "row_count": preview.row_count, "offset": offset}


def chart(store_path: str, ref: str, name: str) -> dict[str, Any]:
    """The chart document ``name`` of run ``ref`` (a confusion matrix, ROC or precision-recall curve).

    Raises:
        ArtifactNotFoundError, RunNotFoundError, AmbiguousRunError: no such run or artifact.
        ValueError: the artifact is not a chart document.
    """
    return chart_document(store_path, ref, name)[1]


def file_path(store_path: str, info: queries.RunInfo, relative: str) -> str | None:
    """The path of the run's file ``relative`` (to ``<store>/artifacts/<trial component>/``), or
    ``None`` when that would leave the folder: ``..``, an absolute path, or a symlink out of it."""
    folder = _files_of(store_path, info)
    if not relative or os.path.isabs(relative) or "\\" in relative or "\0" in relative:
        return None
    path = os.path.realpath(os.path.join(folder, relative))
    if os.path.commonpath([folder, path]) != folder or path == folder or not os.path.isfile(path):
        return None
    return path


def _files_of(store_path: str, info: queries.RunInfo) -> str:
    """The folder of the run's files in the store, symlinks resolved."""
    return os.path.realpath(os.path.join(store_path, "artifacts", info.trial_component_name))


def _file_url(store_path: str, info: queries.RunInfo, value: str) -> str | None:
    path = path_of_uri(value)
    folder = _files_of(store_path, info)
    if path is None or os.path.commonpath([folder, os.path.realpath(path)]) != folder:
        return None
    return f"/files/{info.experiment}/{info.name}/{os.path.relpath(os.path.realpath(path), folder)}"


class LocalSource:
    """The UI's reads of the local store at ``store_path``, each in a worker thread."""

    def __init__(self, store_path: str) -> None:
        self.store_path = store_path

    async def _read(self, read: Callable[[sqlite3.Connection], Any]) -> Any:
        def answer() -> Any:
            with db.opened(self.store_path) as conn:
                return read(conn)

        return await anyio.to_thread.run_sync(answer)

    async def runs(self) -> list[dict[str, Any]]:
        return await self._read(runs)  # type: ignore[no-any-return]

    async def run(self, ref: str) -> dict[str, Any]:
        return await self._read(lambda conn: run(conn, self.store_path, ref))  # type: ignore[no-any-return]

    async def series(self, ref: str, name: str, buckets: int) -> dict[str, Any]:
        return await self._read(lambda conn: series(conn, ref, name, buckets))  # type: ignore[no-any-return]

    async def table_page(self, ref: str, name: str, offset: int, limit: int) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(table_page, self.store_path, ref, name, offset, limit)

    async def chart(self, ref: str, name: str) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(chart, self.store_path, ref, name)

    async def file_path(self, ref: str, relative: str) -> str | None:
        def find(conn: sqlite3.Connection) -> str | None:
            return file_path(self.store_path, queries.find_run(conn, ref), relative)

        return await self._read(find)  # type: ignore[no-any-return]
