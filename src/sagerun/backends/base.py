"""The small interface every backend implements.

A backend keeps runs (``open_run``/``save_run``) and receives metric batches (``put_metrics``). It
knows nothing of queues or retries: a whole-request failure raises ``TransportError`` and per-item
failures come back as ``ItemError`` values; the batcher decides what to do with them.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime
from typing import NamedTuple, Sequence, Union

from .._ingest.points import Point

ParameterValue = Union[str, int, float]


class ItemError(NamedTuple):
    """A point of a batch the backend refused: its index in the batch and the API's code."""

    index: int
    code: str


@dataclasses.dataclass
class Artifact:
    value: str
    media_type: str | None = None


@dataclasses.dataclass
class RunRecord:
    """What a backend keeps of one run (a SageMaker trial component created by a Run)."""

    experiment_name: str
    run_name: str
    trial_name: str
    trial_component_name: str
    experiment_display_name: str | None = None
    run_display_name: str | None = None
    tags: list[dict[str, str]] = dataclasses.field(default_factory=list)
    parameters: dict[str, ParameterValue] = dataclasses.field(default_factory=dict)
    input_artifacts: dict[str, Artifact] = dataclasses.field(default_factory=dict)
    output_artifacts: dict[str, Artifact] = dataclasses.field(default_factory=dict)
    status: str | None = None
    status_message: str | None = None
    start_time: datetime.datetime | None = None
    end_time: datetime.datetime | None = None


class Backend(abc.ABC):
    """Keeps runs and receives their metrics."""

    #: the most points one ``put_metrics`` call may carry
    max_batch: int = 10

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

    async def __aenter__(self) -> Backend:
        """Connect; the run enters its backend before anything else."""
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release connections."""

