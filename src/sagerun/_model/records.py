"""Model · what a backend keeps of a run: its record, parameter values and artifacts."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Union

ParameterValue = Union[str, int, float]


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
    parent: str | None = None
    """the parent run's trial component name (its run id on MLflow), for a child run"""
