"""Entry · sagerun: async, high-throughput experiment tracking for Amazon SageMaker Experiments.

``async with sagerun.Run(experiment_name=..., run_name=...) as run`` logs parameters and metrics
without ever making the training loop wait on the network.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._model.errors import (
    BackendError, EngineStoppedError, EngineThreadError, ForkedRunError, QueueFullError, RunAlreadyEnteredError,
    RunClosedError, RunNotOpenError, RunStateError, SagerunError, TransportError,
)
from ._ingest.stats import IngestStats
from ._model.registry import ModelVersion
from ._model.session import Session

if TYPE_CHECKING:
    from ._async.experiment import Experiment, list_runs, load_run
    from ._async.reads import ExperimentAnalytics, metric_histories, search_runs
    from ._read.rows import History
    from ._artifacts.code import CodeTooLargeError
    from ._async.run import Run

# Imported on first use: every module of the package imports this one first, and the run's sender
# process (``python -m sagerun._ingest.sender``) must not pay for the API, numpy and botocore.
_LAZY = {"Run": "._async.run", "Experiment": "._async.experiment", "list_runs": "._async.experiment",
         "load_run": "._async.experiment", "CodeTooLargeError": "._artifacts.code",
         "search_runs": "._async.reads", "metric_histories": "._async.reads", "ExperimentAnalytics": "._async.reads",
         "History": "._read.rows"}

__all__ = [
    "BackendError", "CodeTooLargeError", "EngineStoppedError", "EngineThreadError", "Experiment", "ForkedRunError",
    "IngestStats", "ModelVersion", "QueueFullError", "Run", "RunAlreadyEnteredError", "RunClosedError",
    "RunNotOpenError", "RunStateError", "SagerunError", "Session", "TransportError", "list_runs", "load_run",
    "ExperimentAnalytics", "History", "metric_histories", "search_runs",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sagerun' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__version__ = "0.1.0"
