"""Entry · the synchronous API, for scripts, training loops and notebooks without ``async``.

``from sagerun.sync import Run, load_run, list_runs, Experiment`` gives the classes and functions of
``sagerun`` with the same names, arguments and docstrings, used with ``with`` instead of
``async with`` and without ``await``. They are generated from the async API (``scripts/unasync.py``)
and run it on one background event-loop thread per process, started on first use and stopped at
interpreter exit after closing the runs left open. ``log_metric`` and ``log_metrics`` never cross
to that thread: they check and queue the points on the caller's thread.

Everything else that ``sagerun`` exports (``Session``, the errors, ``IngestStats``, ``ModelVersion``) is the same
object here.
"""

from ._model.errors import (
    BackendError, EngineStoppedError, EngineThreadError, ForkedRunError, QueueFullError, RunAlreadyEnteredError,
    RunClosedError, RunNotOpenError, RunStateError, SagerunError, TransportError,
)
from ._artifacts.code import CodeTooLargeError
from ._ingest.stats import IngestStats
from ._read.rows import History
from ._model.registry import ModelVersion
from ._model.session import Session
from ._sync import Experiment, ExperimentAnalytics, Run, list_runs, load_run, metric_histories, search_runs

__all__ = [
    "BackendError", "CodeTooLargeError", "EngineStoppedError", "EngineThreadError", "Experiment", "ForkedRunError",
    "IngestStats", "ModelVersion", "QueueFullError", "Run", "RunAlreadyEnteredError", "RunClosedError",
    "RunNotOpenError", "RunStateError", "SagerunError", "Session", "TransportError", "list_runs", "load_run",
    "ExperimentAnalytics", "History", "metric_histories", "search_runs",
]
