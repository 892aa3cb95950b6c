"""Run · the run ``load_run()`` opens for the SageMaker job it runs in, shape by shape.

- A job started with ``ExperimentConfig=run.experiment_config``: the run its ``RunName`` names.
- A pipeline step: ``PipelineExperimentConfig`` gives ``ExperimentName`` (the pipeline) and
  ``TrialName`` (the execution) but no ``RunName`` (the SDK's ``load_run`` fails there,
  sagemaker-python-sdk #4114): a run named after the job, in that experiment, whose run group is
  that trial, so that a second ``load_run()`` in the job resumes it.
- A training job of a hyperparameter tuning job, which takes no experiment config (#1503): a run
  named after the training job, in an experiment named after the tuning job, with the job's
  hyperparameters (less SageMaker's own) as parameters and the objective as tags, so that the
  trials can be ranked by their metrics.

Every such run is tagged with its job, and with the trial component SageMaker makes for the job
(``<job>-aws-training-job``), which users otherwise take for a second run (#4523).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

from .._model.environment import JobEnvironment
from .._model.naming import MAX_NAME_LENGTH, check_name

JOB_TAG = "sagerun:job"
JOB_COMPONENT_TAG = "sagerun:job-trial-component"
OBJECTIVE_TAG = "sagerun:tuning-objective"
OBJECTIVE_TYPE_TAG = "sagerun:tuning-objective-type"
#: SageMaker's own hyperparameters, not the user's
_SAGEMAKER_OWN = ("sagemaker_", "_tuning_objective_metric")


@dataclasses.dataclass(frozen=True)
class JobRun:
    """Which run a job logs to, and what it starts with."""

    experiment: str
    run: str
    run_group: str | None = None
    """a trial other than the experiment's default run group (a pipeline execution's)"""
    parameters: dict[str, str | int | float] = dataclasses.field(default_factory=dict)
    tags: dict[str, str] = dataclasses.field(default_factory=dict)


def tuning_job_of(described: Mapping[str, Any]) -> str | None:
    """The tuning job a training job belongs to, when it has no experiment config of its own."""
    arn = described.get("TuningJobArn")
    if described.get("ExperimentConfig") or not isinstance(arn, str) or "/" not in arn:
        return None
    return arn.rsplit("/", 1)[-1]


def run_of(job: JobEnvironment, described: Mapping[str, Any], tuning: Mapping[str, Any] | None = None) -> JobRun:
    """The run of ``job`` (described as DescribeTrainingJob and its siblings answer; ``tuning`` as
    DescribeHyperParameterTuningJob answers, for a tuning job's training job).

    Raises:
        RuntimeError: the job's ExperimentConfig names no experiment, or a run of another experiment.
    """
    tags = {JOB_TAG: job.arn, JOB_COMPONENT_TAG: f"{job.name}-aws-{job.kind}-job"}
    name = job.name.lower()[:MAX_NAME_LENGTH].strip("-")
    if tuning is not None:
        objective = (tuning.get("HyperParameterTuningJobConfig") or {}).get("HyperParameterTuningJobObjective") or {}
        tags.update({OBJECTIVE_TAG: str(objective.get("MetricName", "")), OBJECTIVE_TYPE_TAG: str(
            objective.get("Type", ""))})
        tuning_name = str(tuning.get("HyperParameterTuningJobName") or tuning_job_of(described))
        return JobRun(check_name("the tuning job's name", tuning_name.lower()), name,
                      parameters=hyperparameters(described.get("HyperParameters") or {}),
                      tags={key: value for key, value in tags.items() if value})
    config: Any = described.get("ExperimentConfig") or {}
    experiment, component, trial = config.get("ExperimentName"), config.get("RunName"), config.get("TrialName")
    if experiment and trial and not component:  # a pipeline step
        return JobRun(check_name("ExperimentName", experiment), name, run_group=trial, tags=tags)
    if not experiment or not component:
        raise RuntimeError(
            f"load_run() found the {job.kind} job {job.name!r}, but its ExperimentConfig names no run "
            f"({config!r}). Start the job with ExperimentConfig=run.experiment_config, or pass run_name "
            "and experiment_name")
    experiment = check_name("ExperimentName", experiment)
    prefix = f"{experiment}-"
    if not component.lower().startswith(prefix) or len(component) == len(prefix):
        raise RuntimeError(
            f"the {job.kind} job {job.name!r} names RunName {component!r}, which is not a run of experiment "
            f"{experiment!r} (a run's trial component is named '<experiment>-<run>'). Start the job with "
            "ExperimentConfig=run.experiment_config")
    return JobRun(experiment, component[len(prefix):], tags=tags)


def hyperparameters(raw: Mapping[str, Any]) -> dict[str, str | int | float]:
    """A job's hyperparameters as parameters: the SDK sends each JSON-encoded (``'"adam"'``,
    ``'0.01'``), and SageMaker's own entries are left out."""
    found: dict[str, str | int | float] = {}
    for name, text in raw.items():
        if name.startswith(_SAGEMAKER_OWN):
            continue
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            value = text
        found[name] = value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else str(text)
    return found
