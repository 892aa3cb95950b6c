"""Entry · sagerun: async, high-throughput experiment tracking for Amazon SageMaker Experiments.

``async with sagerun.Run(experiment_name=..., run_name=...) as run`` logs parameters and metrics
without ever making the training loop wait on the network.
"""

from ._async.experiment import Experiment, list_runs, load_run
from ._async.run import Run
from ._model.errors import (
    BackendError, EngineStoppedError, EngineThreadError, ForkedRunError, QueueFullError, RunAlreadyEnteredError,
    RunClosedError, RunNotOpenError, RunStateError, SagerunError, TransportError,
)
from ._ingest.stats import IngestStats
from ._model.session import Session

__all__ = [
    "BackendError", "EngineStoppedError", "EngineThreadError", "ForkedRunError", "IngestStats", "QueueFullError",
    "Run", "RunAlreadyEnteredError", "RunClosedError", "RunNotOpenError", "RunStateError", "SagerunError", "Session",
    "TransportError",
]
__all__ += ["Experiment", "list_runs", "load_run"]
__version__ = "0.1.0"
