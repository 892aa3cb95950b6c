"""Read · the shapes of what is read back: a run's row, a metric's summary, a metric's history."""

from __future__ import annotations

import dataclasses
import datetime
from typing import NamedTuple

import numpy as np

STATS = ("last", "min", "max", "avg", "count")


@dataclasses.dataclass(frozen=True)
class MetricStats:
    """What a backend keeps of one metric of a run; ``None`` where it keeps nothing (MLflow keeps
    only the last value, unless the history is read)."""

    last: float | None = None
    min: float | None = None
    max: float | None = None
    avg: float | None = None
    count: int | None = None
    std: float | None = None

    @classmethod
    def of(cls, values: np.ndarray) -> MetricStats:
        """The summary of a whole history, in the order logged."""
        if not len(values):
            return cls(count=0)
        return cls(last=float(values[-1]), min=float(values.min()), max=float(values.max()),
                   avg=float(values.mean()), count=int(len(values)), std=float(values.std()))


@dataclasses.dataclass(frozen=True)
class RunRow:
    """One run as a search reads it."""

    experiment: str
    run: str
    run_group: str | None
    trial_component_name: str
    """what the backend addresses the run by: its trial component, or its MLflow run id"""
    status: str | None
    status_message: str | None
    start_time: datetime.datetime | None
    end_time: datetime.datetime | None
    created_time: datetime.datetime | None
    parent: str | None
    tags: dict[str, str]
    parameters: dict[str, str | int | float]
    metrics: dict[str, MetricStats]

    @property
    def ref(self) -> str:
        """``experiment/run``."""
        return f"{self.experiment}/{self.run}"


class History(NamedTuple):
    """The points of one metric of one run, in the order logged: steps (-1 where a point has
    none), timestamps in epoch seconds, values."""

    steps: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray

    @classmethod
    def empty(cls) -> History:
        return cls(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64))


def utc(seconds: float | None) -> datetime.datetime | None:
    return None if seconds is None else datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
