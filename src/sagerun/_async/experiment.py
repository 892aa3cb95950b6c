"""Run · finding runs again: ``load_run``, ``list_runs``, and the ``Experiment`` that holds them.

The rules are those of ``sagemaker.experiments`` (SageMaker Python SDK v2), so that a job script
written for it finds the same run with sagerun.
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any, Literal, Mapping

from .._model.environment import detect_job, in_a_job, leads_the_job
from .._model.errors import BackendError
from .._model.answers import DeadLetter
from .._model.naming import MAX_NAME_LENGTH, check_name
from .._model.session import Session
from ..backends import backend_name, make_backend
from .._model.records import RunRecord
from .._model.tags import as_dict, check_tags, listed
from . import _jobs
from ._resume import Resume
from .run import Run, current_run

logger = logging.getLogger("sagerun")

SortBy = Literal["CreationTime", "Name"]
SortOrder = Literal["Ascending", "Descending"]
_SORT_BY = ("CreationTime", "Name")
_SORT_ORDER = ("Ascending", "Descending")
_DELETE_CONFIRMATION = "--force"


async def load_run(run_name: str | None = None, experiment_name: str | None = None,
                   session: Session | None = None, *, dead_letter: DeadLetter | None = None,
                   artifact_bucket: str | None = None, artifact_prefix: str | None = None,
                   owner: bool | None = None, resume: Resume = "skip") -> Run:
    """The run to log to, found as the SageMaker SDK finds it; enter it with ``async with``.

    With ``run_name`` and ``experiment_name``, that run (created if missing, as ``Run`` does);
    the names win over a current run or a job's configuration (with a warning). With no names:
    inside an ``async with Run(...)`` block, that same run object; else, for the MLflow backend,
    the run whose id ``MLFLOW_RUN_ID`` names, as MLflow resumes it, or a run of the experiment
    ``MLFLOW_EXPERIMENT_NAME`` names (named after the SageMaker job inside one, so that a restarted
    job resumes it; else a new run); else inside a SageMaker
    training, processing or transform job (``TRAINING_JOB_ARN``, the processing job's
    ``/opt/ml/config/processingjobconfig.json``, ``TRANSFORM_JOB_ARN``), the run named by the
    job's ``ExperimentConfig``, read by describing the job (transient failures are retried); in a
    pipeline step (an experiment and a trial, no run) a run named after the job in that trial; in
    a training job of a tuning job, a run named after it in an experiment named after the tuning
    job, with its hyperparameters (see ``_jobs``). The run is tagged ``sagerun:job`` and
    ``sagerun:job-trial-component`` (the trial component SageMaker makes for the job).
    Processes of one job (distributed training ranks) may all load the same run and log to it.

    Args:
        run_name: the run's name, as given to ``Run``; needs ``experiment_name``.
        experiment_name: the experiment's name; needs ``run_name``.
        session: connection and engine settings; ``Session.from_env()`` when ``None``.
        dead_letter: called with points that could not be delivered (see ``Run``).
        artifact_bucket: the S3 bucket of files, charts and tables (see ``Run``); not used when
            the current run is returned, which keeps its own.
        artifact_prefix: the S3 key prefix they go under (see ``Run``); likewise.
        owner: whether this process saves the run's status, parameters, tags and artifacts (see
            ``Run``). ``None``: inside a SageMaker job, only global rank 0 of the lead host
            (``algo-1``, the first of ``SM_HOSTS`` or of ``resourceconfig.json``'s hosts), so that
            every host and rank can log to one run and the lead alone ends it; elsewhere, yes.
        resume: what a step the run has already becomes when logged again (see ``Run``):
            ``"skip"``, or ``"rewind"``.

    Raises:
        ValueError: only one of ``run_name`` and ``experiment_name`` was given, or a bad name.
        RuntimeError: no names, no current run, and not in a SageMaker job; or the job's
            ``ExperimentConfig`` names no run.
        BackendError: the job could not be described.
    """
    if owner is None:
        owner = leads_the_job() if in_a_job() else True
    if (run_name is None) != (experiment_name is None):
        raise ValueError(
            "load_run needs both run_name and experiment_name, or neither (to load the current run or the "
            f"SageMaker job's run); got run_name={run_name!r}, experiment_name={experiment_name!r}"
        )
    if run_name is not None and experiment_name is not None:
        overridden = "the current run" if current_run.get() is not None else (
            "the SageMaker job's ExperimentConfig" if in_a_job() else None)
        if overridden:
            logger.warning("sagerun: load_run(run_name=%r, experiment_name=%r) loads that run; the explicit names "
                           "win over %s", run_name, experiment_name, overridden)
        return Run(experiment_name, run_name, session=session, dead_letter=dead_letter,
                   artifact_bucket=artifact_bucket, artifact_prefix=artifact_prefix, owner=owner, resume=resume)
    current = current_run.get()
    if current is not None:
        return _handed_out(current)
    mlflow_run, mlflow_experiment = os.environ.get("MLFLOW_RUN_ID"), os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if mlflow_run or mlflow_experiment:
        session = session if session is not None else Session.from_env()
    if session is not None and backend_name(session) == "mlflow":  # as mlflow.start_run() finds its run
        if mlflow_run:
            async with make_backend(session) as backend:
                experiment_name, run_name = await backend.run_names(mlflow_run)
            return Run(experiment_name, run_name, session=session, dead_letter=dead_letter,
                       artifact_bucket=artifact_bucket, artifact_prefix=artifact_prefix, owner=owner, resume=resume)
        if mlflow_experiment:
            # In a SageMaker job the run is named after the job, so that a restarted job resumes it.
            try:
                job = detect_job()
            except RuntimeError:
                job = None
            return Run(mlflow_experiment, job.name[:MAX_NAME_LENGTH] if job else None, session=session,
                       dead_letter=dead_letter, artifact_bucket=artifact_bucket, artifact_prefix=artifact_prefix,
                       owner=owner, resume=resume)
    job = detect_job()
    if job is None:
        raise RuntimeError(
            "load_run() found no run to load: call it inside a 'with Run(...)' block, or in a SageMaker "
            "training, processing or transform job started with an ExperimentConfig (run.experiment_config "
            "gives one), or pass run_name and experiment_name"
        )
    session = session if session is not None else Session.from_env()
    async with make_backend(session) as backend:
        described = await backend.describe_job(job.kind, job.name)
        tuning_job = _jobs.tuning_job_of(described)
        tuning = await backend.describe_job("tuning", tuning_job) if tuning_job else None
    shape = _jobs.run_of(job, described, tuning)
    run = Run(shape.experiment, shape.run, tags=shape.tags, session=session, dead_letter=dead_letter,
              artifact_bucket=artifact_bucket, artifact_prefix=artifact_prefix, owner=owner, resume=resume)
    if shape.run_group:
        run._record.trial_name = shape.run_group
    run.log_parameters(shape.parameters)
    return run


def _handed_out(run: Run) -> Run:
    """The current run, marked so that one more ``async with`` on it nests instead of failing."""
    run._allow_nested_entry()
    return run


async def list_runs(experiment_name: str, created_before: datetime.datetime | None = None,
                    created_after: datetime.datetime | None = None, max_results: int | None = None,
                    sort_by: SortBy = "CreationTime", sort_order: SortOrder = "Descending",
                    session: Session | None = None, *, tags: Mapping[str, str] | None = None,
                    include_children: bool = False) -> list[Run]:
    """The runs of an experiment, newest first unless asked otherwise.

    Only trial components created by a ``Run`` (tagged ``sagemaker:trial-component-source=run``
    and in the experiment's run group) are listed, not those of jobs. Each ``Run`` comes with the
    parameters and status it had when listed; enter it with ``async with`` to log more to it.

    Args:
        experiment_name: the experiment.
        created_before: only runs created before this moment (a naive datetime is local time).
        created_after: only runs created after this moment.
        max_results: at most this many runs; all when ``None``.
        sort_by: ``"CreationTime"`` or ``"Name"``.
        sort_order: ``"Descending"`` or ``"Ascending"``.
        session: connection and engine settings; ``Session.from_env()`` when ``None``.
        tags: only runs that have each of these tags with that value.
        include_children: list child runs (``Run.child_run``) too; left out by default, as Azure
            ML's ``get_runs`` leaves them out.

    Raises:
        ValueError, TypeError: a bad name, sort, ``max_results`` or ``tags``.
        BackendError: the runs could not be listed.
    """
    experiment = check_name("experiment_name", experiment_name)
    if sort_by not in _SORT_BY:
        raise ValueError(f"sort_by must be one of {', '.join(_SORT_BY)}; got {sort_by!r}")
    if sort_order not in _SORT_ORDER:
        raise ValueError(f"sort_order must be one of {', '.join(_SORT_ORDER)}; got {sort_order!r}")
    if max_results is not None and (type(max_results) is not int or max_results < 1):
        raise ValueError(f"max_results must be a positive int or None; got {max_results!r}")
    wanted = as_dict(check_tags(tags))
    session = session if session is not None else Session.from_env()
    async with make_backend(session) as backend:
        records = await backend.list_runs(experiment, created_after=created_after, created_before=created_before,
                                          sort_by=sort_by, sort_order=sort_order, max_results=max_results,
                                          where=lambda record: listed(record, wanted, include_children))
    runs = []
    for record in records:
        try:
            runs.append(_listed(record, session))
        except ValueError as exc:  # named by another tool beyond a Run's rules: not a run we can open
            logger.debug("sagerun: %s is not listed as a run: %s", record.trial_component_name, exc)
    return runs


def _listed(record: RunRecord, session: Session) -> Run:
    run = Run(record.experiment_name, record.run_name, session=session)
    # The listing already holds the run's parameters and status: keep them on the Run.
    run._record = record
    return run


class Experiment:
    """An experiment: a named group of runs in SageMaker Experiments.

    Get one with ``await Experiment.create(...)`` or ``await Experiment.load(...)``; list its runs
    with ``list_runs``, and delete it with every run group and run in it with
    ``delete_all("--force")``.

    Args:
        experiment_name: the experiment; same rules as ``Run``'s ``experiment_name``.
        display_name: shown in SageMaker Studio.
        description: a description.
        session: connection and engine settings; ``Session.from_env()`` when ``None``.

    Raises:
        ValueError, TypeError: a bad name.
    """

    def __init__(self, experiment_name: str, display_name: str | None = None, description: str | None = None,
                 *, session: Session | None = None) -> None:
        self.experiment_name: str = check_name("experiment_name", experiment_name)
        self.display_name: str | None = display_name
        self.description: str | None = description
        self.experiment_arn: str | None = None
        self.creation_time: datetime.datetime | None = None
        self.last_modified_time: datetime.datetime | None = None
        self.session: Session = session if session is not None else Session.from_env()

    def __repr__(self) -> str:
        return f"Experiment(experiment_name={self.experiment_name!r})"

    @classmethod
    async def create(cls, experiment_name: str, display_name: str | None = None, description: str | None = None,
                     tags: list[dict[str, str]] | None = None, session: Session | None = None) -> Experiment:
        """Create a new experiment.

        Raises:
            ValueError, TypeError: a bad name.
            BackendError: the experiment exists already, or could not be created.
        """
        experiment = cls(experiment_name, display_name, description, session=session)
        async with make_backend(experiment.session) as backend:
            described = await backend.create_experiment(experiment.experiment_name, display_name, description,
                                                        list(tags or []))
        return experiment._described(described)

    @classmethod
    async def load(cls, experiment_name: str, session: Session | None = None) -> Experiment:
        """Load an existing experiment.

        Raises:
            ValueError, TypeError: a bad name.
            BackendError: the experiment does not exist, or could not be described.
        """
        experiment = cls(experiment_name, session=session)
        async with make_backend(experiment.session) as backend:
            described = await backend.describe_experiment(experiment.experiment_name)
        if described is None:
            raise BackendError(f"experiment {experiment.experiment_name!r} does not exist: create it with "
                               f"Experiment.create({experiment.experiment_name!r}) or by opening a Run in it")
        return experiment._described(described)

    def _described(self, described: dict[str, Any]) -> Experiment:
        self.display_name = described.get("DisplayName") or self.display_name
        self.description = described.get("Description") or self.description
        self.experiment_arn = described.get("ExperimentArn")
        self.creation_time = described.get("CreationTime")
        self.last_modified_time = described.get("LastModifiedTime")
        return self

    async def list_runs(self, created_before: datetime.datetime | None = None,
                        created_after: datetime.datetime | None = None, max_results: int | None = None,
                        sort_by: SortBy = "CreationTime", sort_order: SortOrder = "Descending", *,
                        tags: Mapping[str, str] | None = None, include_children: bool = False) -> list[Run]:
        """The runs of this experiment; see the module-level ``list_runs``.

        Raises:
            ValueError, TypeError: a bad sort, ``max_results`` or ``tags``.
            BackendError: the runs could not be listed.
        """
        return await list_runs(self.experiment_name, created_before, created_after, max_results, sort_by,
                               sort_order, self.session, tags=tags, include_children=include_children)

    async def delete_all(self, action: str) -> None:
        """Delete this experiment with every run group in it and every run in those.

        Args:
            action: must be ``"--force"``, to confirm the deletion, as the SageMaker SDK requires.

        Raises:
            ValueError: ``action`` is not ``"--force"``.
            BackendError: something could not be deleted; what was deleted stays deleted.
        """
        if action != _DELETE_CONFIRMATION:
            raise ValueError(f"delete_all deletes the experiment {self.experiment_name!r} with all its runs: "
                             f"confirm with delete_all({_DELETE_CONFIRMATION!r})")
        async with make_backend(self.session) as backend:
            await backend.delete_experiment(self.experiment_name)
        logger.info("sagerun: deleted experiment %s with its run groups and runs", self.experiment_name)
