"""Backends · the small interface every backend implements.

A backend keeps runs (``open_run``/``save_run``) and receives metric batches (``put_metrics``). It
knows nothing of queues or retries: a whole-request failure raises ``TransportError`` and per-item
failures come back as ``ItemError`` values; the batcher decides what to do with them.
"""

from __future__ import annotations

import abc
import datetime
from typing import Callable, Sequence

from .._model.answers import ItemError
from .._model.points import Point
from .._model.records import RunRecord
from .._model.registry import ModelRequest, ModelVersion
from .._model.sink import MetricsTarget

class Backend(abc.ABC):
    """Keeps runs and receives their metrics."""

    #: the most points one ``put_metrics`` call may carry
    max_batch: int = 10
    #: the most requests worth having in flight at once (``None``: the session's bounds decide)
    max_in_flight: int | None = None
    #: points it cannot take are worth keeping in the local spool for a later ``sagerun sync``
    remote: bool = False
    #: a parameter, once saved, keeps its value (MLflow): a run refuses another at the call
    immutable_parameters: bool = False

    @abc.abstractmethod
    async def open_run(self, record: RunRecord) -> RunRecord:
        """Load the run named by ``record`` or create it (with its experiment and run group).

        Returns the stored record, whose parameters and artifacts the caller merges its own into.

        Raises:
            BackendError: the run could not be loaded or created.
        """

    @abc.abstractmethod
    async def save_run(self, record: RunRecord) -> None:
        """Store status, times, parameters and artifacts of ``record`` (the full set each time).

        Raises:
            BackendError: the run could not be saved.
        """

    @abc.abstractmethod
    async def put_metrics(self, trial_component_name: str, points: Sequence[Point]) -> Sequence[ItemError]:
        """Deliver at most ``max_batch`` points; return the items refused.

        Raises:
            TransportError: the whole request failed.
        """

    def metrics_target(self) -> MetricsTarget | None:
        """Where a sender process may send this backend's metrics; ``None``: only from here."""
        return None

    async def __aenter__(self) -> Backend:
        """Connect; the run enters its backend before anything else."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release connections."""


    # -- finding runs and experiments again (load_run, list_runs, Experiment) -----------------------
    # Defaults raise, so that a backend without them still imports and runs.

    async def link_job(self, record: RunRecord, job_arn: str) -> None:
        """Link the trial component SageMaker made for the job of ``job_arn`` to the run, where the
        backend keeps lineage; best effort, never raising. Nothing elsewhere."""
        return None

    async def add_tags(self, record: RunRecord, tags: dict[str, str]) -> None:
        """Set ``tags`` on the opened run of ``record`` and nothing else: what a process that does
        not own the run (``Run(owner=False)``) may write.

        Raises:
            BackendError: the tags could not be set.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot set tags alone")

    async def delivered_steps(self, record: RunRecord) -> dict[str, int]:
        """The highest step of each metric the backend holds for the run of ``record`` (an opened
        one): where a resumed run goes on. Empty for a new run, and for a backend that cannot tell.

        Raises:
            BackendError: the backend could not be read.
        """
        return {}

    async def describe_job(self, kind: str, name: str) -> dict[str, object]:
        """Describe SageMaker job ``name`` of ``kind`` (``"training"``, ``"processing"``,
        ``"transform"`` or ``"tuning"``) as DescribeTrainingJob and its siblings answer,
        ``ExperimentConfig`` included.

        Raises:
            BackendError: the job was not found or could not be described.
            NotImplementedError: this backend knows no SageMaker jobs.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot describe SageMaker jobs")

    async def list_runs(self, experiment_name: str, *, created_after: datetime.datetime | None = None,
                        created_before: datetime.datetime | None = None, sort_by: str = "CreationTime",
                        sort_order: str = "Descending", max_results: int | None = None,
                        where: Callable[[RunRecord], bool] | None = None) -> list[RunRecord]:
        """The runs of an experiment (trial components created by a Run, in its run group), sorted by
        ``sort_by`` (``"CreationTime"`` or ``"Name"``) in ``sort_order`` (``"Ascending"`` or
        ``"Descending"``), created strictly between the bounds given, for which ``where`` holds
        (tags, children), at most ``max_results``.

        Raises:
            BackendError: the runs could not be listed.
            NotImplementedError: this backend cannot list runs.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot list runs")

    async def run_names(self, run_id: str) -> tuple[str, str]:
        """The experiment name and run name of the run whose backend id is ``run_id`` (MLflow's
        ``MLFLOW_RUN_ID``).

        Raises:
            BackendError: no such run, or it could not be read.
            NotImplementedError: this backend has no run ids of its own.
        """
        raise NotImplementedError(f"{type(self).__name__} has no run ids of its own")

    async def describe_experiment(self, experiment_name: str) -> dict[str, object] | None:
        """The experiment as DescribeExperiment answers (``ExperimentName``, ``ExperimentArn``,
        ``DisplayName``, ``Description``, ``CreationTime``, ``LastModifiedTime``), ``None`` if missing.

        Raises:
            BackendError: the experiment could not be described.
            NotImplementedError: this backend cannot describe experiments.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot describe experiments")

    async def create_experiment(self, experiment_name: str, display_name: str | None = None,
                                description: str | None = None,
                                tags: list[dict[str, str]] | None = None) -> dict[str, object]:
        """Create an experiment; return it as ``describe_experiment`` does.

        Raises:
            BackendError: it exists already, or could not be created.
            NotImplementedError: this backend cannot create experiments on their own.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot create experiments on their own")

    async def delete_experiment(self, experiment_name: str) -> None:
        """Delete an experiment with every trial (run group) in it and every trial component (run)
        in those, disassociating each from any other trial first.

        Raises:
            BackendError: something could not be deleted (what was deleted before stays deleted).
            NotImplementedError: this backend cannot delete experiments.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot delete experiments")

    # -- the model registry (run.register_model) ----------------------------------------------------

    async def register_model(self, record: RunRecord, request: ModelRequest, model_data: str) -> ModelVersion:
        """Register a new version of the model ``request`` names, whose files are at ``model_data``
        (a URI), in the registry of this backend, linked to the run of ``record``; create the group
        or registered model when it is missing.

        Raises:
            BackendError: the registry refused or could not be reached (the message says what to do).
            NotImplementedError: this backend has no model registry.
        """
        raise NotImplementedError(f"{type(self).__name__} has no model registry")

