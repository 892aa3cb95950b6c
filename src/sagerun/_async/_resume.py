"""Run · a resumed run goes on where it was, without logging a step twice.

A run opened again (a managed spot job restarted from its checkpoint, ``load_run`` of an existing
run) is told by its backend the highest step it holds of each metric. Inside a training job with a
``CheckpointConfig``, the owner first sends what an earlier process of the job left in the
checkpoint folder (its undelivered points, kept there at close or SIGTERM), less what the backend
has. Then, by default (``resume="skip"``), a point logged again at or below a metric's highest
step is skipped and counted (``ingest_stats.skipped_resumed``): the steps between the checkpoint
and the interruption, which training logs again, appear once. ``resume="rewind"`` keeps them.
"""

from __future__ import annotations

import glob
import logging
import os
from typing import Any, Literal

import anyio.to_thread
import orjson

from .._ingest.intake import MetricIntake
from .._ingest.queue import Item, PointQueue
from .._model.environment import detect_job
from .._model.records import RunRecord
from ..backends.base import Backend
from . import _container

logger = logging.getLogger("sagerun")

Resume = Literal["skip", "rewind"]
RESUME_MODES = ("skip", "rewind")


async def resume(backend: Backend, record: RunRecord, queue: PointQueue, intake: MetricIntake, mode: Resume,
                 owner: bool) -> None:
    """Send what an earlier process of the job left behind (the owner), then skip what the run has.
    Never raises: a backend that cannot tell is said once, and the run keeps every point."""
    known = True
    try:
        highest = await backend.delivered_steps(record)
    except Exception as exc:
        known, highest = False, {}
        logger.warning("sagerun: run %s could not learn which steps it has already (%s): every point logged is "
                       "kept, steps logged again included", record.trial_component_name, exc)
    try:
        left = await _left_behind(backend, record.trial_component_name) if owner else []
    except Exception as exc:
        left = []
        logger.warning("sagerun: what an earlier process of this job left in its checkpoint folder could not be "
                       "read (%s); `sagerun sync --from` sends it later", exc)
    fresh: list[Item] = [(r["name"], float(r["value"]), r["step"], float(r["timestamp"])) for r in left
                         if _not_held(r, highest)]
    if fresh:
        await queue.put_items_async(fresh)
        logger.info("sagerun: %d points an earlier process of this job left in its checkpoint folder are sent with "
                    "run %s", len(fresh), record.trial_component_name)
    for name, _, step, _ in fresh:
        if step is not None:
            highest[name] = max(highest.get(name, -1), step)
    if mode == "skip" and known and highest:
        intake.skip_through(highest)


def _not_held(row: dict[str, Any], highest: dict[str, int]) -> bool:
    """Whether the run lacks a left-behind point: one past the metric's highest step; one without a
    step, which cannot be told apart from those the run has, only for a metric the run lacks."""
    name = str(row["name"])
    if row["step"] is None:
        return name not in highest
    return bool(row["step"] > highest.get(name, -1))


async def _left_behind(backend: Backend, trial_component_name: str) -> list[dict[str, Any]]:
    """The rows the job's checkpoint folder keeps for the run."""
    try:
        job = detect_job()
    except RuntimeError:
        return []
    if job is None or job.kind != "training" or not backend.remote:
        return []
    kept = await _container.checkpoint_spool(job, backend)
    if kept is None:
        return []
    return await anyio.to_thread.run_sync(_read, kept[0], trial_component_name)


def _read(folder: str, trial_component_name: str) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), f"{glob.escape(trial_component_name)}-*.jsonl"))):
        with open(path, "rb") as file:
            rows += [orjson.loads(line) for line in file.read().splitlines() if line.strip()]
    return [row for row in rows if row.get("trial_component_name") == trial_component_name and not row.get("refused")]
