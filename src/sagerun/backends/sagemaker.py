"""Backends · sageMaker Experiments through aioboto3: control calls and BatchPutMetrics.

One client per service for the life of the backend, shared by the tasks of one event loop, with
botocore's retries switched off: sagerun's retry policy is the only one.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from typing import Any, Awaitable, Callable, Sequence

import anyio
import botocore.exceptions

from .._model.errors import BackendError, TransportError
from .._model.points import Point
from .._model.naming import PARENT_TAG, RUN_TAG
from .._model.tags import as_dict, as_list
from .._model.session import Session
from .aws import as_transport_error, boto_session, call_with_retries, error_code, not_found, open_client
from .base import Backend
from .._model.answers import ItemError
from .._model.records import Artifact, RunRecord
from .._model.registry import ModelRequest, ModelVersion
from .._model.sink import MetricsTarget
from . import sagemaker_listing
from .sagemaker_listing import merge_described
from .metrics_http import BATCH_LIMIT, MetricsHTTP

logger = logging.getLogger("sagerun")

class SageMakerBackend(Backend):
    """Runs as trial components of SageMaker Experiments; metrics through BatchPutMetrics."""

    max_batch = BATCH_LIMIT
    remote = True

    def __init__(self, session: Session) -> None:
        self.session = session
        self._stack = contextlib.AsyncExitStack()
        self._sagemaker: Any = None
        self._metrics: Any = None
        self._metrics_http: MetricsHTTP | None = None
        self._tagged: dict[str, tuple[str, dict[str, str]]] = {}  # run -> its ARN, the tags it has

    async def __aenter__(self) -> SageMakerBackend:
        async with contextlib.AsyncExitStack() as stack:
            self._sagemaker = await open_client(stack, self.session, "sagemaker")
            self._metrics = await open_client(stack, self.session, "sagemaker-metrics",
                                              max_connections=self.session.max_in_flight)
            if self.session.metrics_client == "http":
                credentials = await boto_session(self.session).get_credentials()
                if credentials is None:
                    raise BackendError(
                        "no AWS credentials found for SageMaker: configure them (environment, ~/.aws, or an "
                        "instance role), or log to the local store with Session(backend='local')"
                    )
                self._metrics_http = MetricsHTTP(
                    self._metrics.meta.endpoint_url, self._metrics.meta.region_name, credentials,
                    connections=self.session.max_in_flight, timeout=self.session.request_timeout)
                stack.push_async_callback(self._metrics_http.aclose)
            self._stack = stack.pop_all()
        return self

    def metrics_target(self) -> MetricsTarget | None:
        if self._metrics_http is None:  # metrics_client="botocore" sends through aioboto3, in here
            return None
        return MetricsTarget(self._metrics.meta.endpoint_url, self._metrics.meta.region_name,
                             self._metrics_http.credentials)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._stack.aclose()

    async def _call(self, method: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        """One control call under the retry policy; a final ``ClientError`` is raised as it is."""
        return await call_with_retries(self.session, method, **kwargs)

    async def open_run(self, record: RunRecord) -> RunRecord:
        try:
            return await self._open_run(record)
        except (botocore.exceptions.ClientError, TransportError) as exc:
            raise BackendError(
                f"could not load or create run {record.run_name!r} of experiment {record.experiment_name!r}: "
                f"{exc}. Check the credentials, region and IAM permissions (sagemaker:CreateExperiment, "
                f"CreateTrial, CreateTrialComponent, DescribeTrialComponent, AssociateTrialComponent)"
            ) from exc

    async def _open_run(self, record: RunRecord) -> RunRecord:
        sm = self._sagemaker
        try:
            kwargs: dict[str, Any] = {"ExperimentName": record.experiment_name}
            if record.experiment_display_name:
                kwargs["DisplayName"] = record.experiment_display_name
            await self._call(sm.create_experiment, **kwargs)
        except botocore.exceptions.ClientError as exc:
            if not _already_exists(exc):
                raise
        # Describe before create: moto (and a racing second process) must not wipe what exists.
        try:
            await self._call(sm.describe_trial, TrialName=record.trial_name)
        except botocore.exceptions.ClientError as exc:
            if not not_found(exc):
                raise
            await self._create_ignoring_exists(sm.create_trial, TrialName=record.trial_name,
                                               ExperimentName=record.experiment_name)
        try:
            described = await self._call(sm.describe_trial_component, TrialComponentName=record.trial_component_name)
        except botocore.exceptions.ClientError as exc:
            if not not_found(exc):
                raise
            tags = _tags_of(record)
            kwargs = {"TrialComponentName": record.trial_component_name, "Tags": tags}
            if record.run_display_name:
                kwargs["DisplayName"] = record.run_display_name
            created = await self._create_ignoring_exists(sm.create_trial_component, **kwargs)
            if created is not None:
                # Tags given to create are dropped by some implementations (moto); AddTags is kept by all.
                await self._call(sm.add_tags, ResourceArn=created["TrialComponentArn"], Tags=tags)
                self._tagged[record.trial_component_name] = (created["TrialComponentArn"], as_dict(tags))
            await self._associate(record)
            return record
        # A resumed run's tags are not described: its first save adds those it has now.
        self._tagged[record.trial_component_name] = (str(described.get("TrialComponentArn", "")), {})
        await self._associate(record)
        return merge_described(record, described)

    async def _create_ignoring_exists(self, method: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        try:
            return await self._call(method, **kwargs)
        except botocore.exceptions.ClientError as exc:
            if not _already_exists(exc):
                raise
            return None

    async def _associate(self, record: RunRecord) -> None:
        found = await self._call(
            self._sagemaker.search, Resource="ExperimentTrialComponent",
            SearchExpression={"Filters": [
                {"Name": "Parents.TrialName", "Operator": "Equals", "Value": record.trial_name},
                {"Name": "TrialComponentName", "Operator": "Equals", "Value": record.trial_component_name},
            ]},
        )
        names = {r.get("TrialComponent", {}).get("TrialComponentName") for r in found.get("Results", [])}
        if record.trial_component_name in names:
            return
        try:
            await self._call(self._sagemaker.associate_trial_component,
                             TrialComponentName=record.trial_component_name, TrialName=record.trial_name)
        except botocore.exceptions.ClientError as exc:
            if "already" not in str(exc).lower():
                raise

    async def save_run(self, record: RunRecord) -> None:
        kwargs: dict[str, Any] = {
            "TrialComponentName": record.trial_component_name,
            "Parameters": {k: _parameter(v) for k, v in record.parameters.items()},
            "InputArtifacts": {k: _artifact(a) for k, a in record.input_artifacts.items()},
            "OutputArtifacts": {k: _artifact(a) for k, a in record.output_artifacts.items()},
        }
        if record.status:
            status: dict[str, str] = {"PrimaryStatus": record.status}
            if record.status_message:
                status["Message"] = record.status_message
            kwargs["Status"] = status
        if record.start_time:
            kwargs["StartTime"] = record.start_time
        if record.end_time:
            kwargs["EndTime"] = record.end_time
        try:
            await self._call(self._sagemaker.update_trial_component, **kwargs)
            await self._add_new_tags(record)
        except (botocore.exceptions.ClientError, TransportError) as exc:
            raise BackendError(
                f"could not save run {record.trial_component_name!r} (status {record.status}): {exc}"
            ) from exc

    async def _add_new_tags(self, record: RunRecord) -> None:
        """AddTags with the tags set since the last save (SageMaker keeps tags apart from the record)."""
        arn, sent = self._tagged.get(record.trial_component_name, ("", {}))
        if not arn:
            return
        new = [tag for tag in _tags_of(record) if sent.get(tag["Key"]) != tag["Value"]]
        if new:
            await self._call(self._sagemaker.add_tags, ResourceArn=arn, Tags=new)
            self._tagged[record.trial_component_name] = (arn, sent | as_dict(new))

    async def register_model(self, record: RunRecord, request: ModelRequest, model_data: str) -> ModelVersion:
        from . import sagemaker_registry

        arn = self._tagged.get(record.trial_component_name, ("", {}))[0]
        try:
            return await sagemaker_registry.register(self._call, self._sagemaker, record, arn, request, model_data,
                                                     not_found)
        except (botocore.exceptions.ClientError, TransportError) as exc:
            raise BackendError(
                f"could not register model {request.group!r} from run {record.trial_component_name!r}: {exc}. Check "
                f"the IAM permissions (sagemaker:DescribeModelPackageGroup, CreateModelPackageGroup, "
                f"CreateModelPackage, DescribeModelPackage, AddAssociation)") from exc

    async def put_metrics(self, trial_component_name: str, points: Sequence[Point]) -> Sequence[ItemError]:
        if self._metrics_http is not None:
            return await self._metrics_http.put(trial_component_name, points)
        data = [
            {"MetricName": name, "Value": value, "Timestamp": timestamp}
            if step is None else
            {"MetricName": name, "Value": value, "Timestamp": timestamp, "Step": step}
            for name, value, step, timestamp in points
        ]
        try:
            response = await self._metrics.batch_put_metrics(TrialComponentName=trial_component_name, MetricData=data)
        except Exception as exc:
            transient = as_transport_error(exc)
            if transient is not None:
                raise transient from exc
            if isinstance(exc, botocore.exceptions.ClientError):
                raise TransportError(f"refused: {error_code(exc)}: {exc}", retryable=False) from exc
            raise
        return [ItemError(int(e["MetricIndex"]), str(e["Code"])) for e in response.get("Errors") or ()]

    # -- finding runs and experiments again (load_run, list_runs, Experiment) -----------------------

    _JOB_DESCRIBERS = {
        "training": ("describe_training_job", "TrainingJobName"),
        "processing": ("describe_processing_job", "ProcessingJobName"),
        "transform": ("describe_transform_job", "TransformJobName"),
        "tuning": ("describe_hyper_parameter_tuning_job", "HyperParameterTuningJobName"),
    }

    async def link_job(self, record: RunRecord, job_arn: str) -> None:
        """Best effort, never raising: the trial component SageMaker made for the job of ``job_arn``
        (``<job>-aws-training-job``) ``ContributedTo`` the run, in lineage, so that Studio shows it
        as the run's job. Only throttling is retried, briefly: an API that answers 500 (moto, a
        region without it) costs one request."""
        arn, _ = self._tagged.get(record.trial_component_name, ("", {}))
        kind, _, name = job_arn.rpartition(":")[2].partition("/")
        source = job_arn.replace(f":{kind}/{name}", f":experiment-trial-component/{name.lower()}-aws-{kind}")
        if not arn or not name:
            return
        try:
            await call_with_retries(self.session, self._sagemaker.add_association, transient_only_if_throttled=True,
                                    deadline=2.0, SourceArn=source, DestinationArn=arn,
                                    AssociationType="ContributedTo")
        except Exception as exc:
            logger.info("sagerun: the job's trial component %s was not linked to run %s in lineage: %s", source,
                        record.trial_component_name, exc)

    async def add_tags(self, record: RunRecord, tags: dict[str, str]) -> None:
        arn, sent = self._tagged.get(record.trial_component_name, ("", {}))
        try:
            await self._call(self._sagemaker.add_tags, ResourceArn=arn, Tags=as_list(tags))
        except (botocore.exceptions.ClientError, TransportError) as exc:
            raise BackendError(f"could not tag run {record.trial_component_name!r}: {exc}. Check the IAM "
                               "permission sagemaker:AddTags") from exc
        self._tagged[record.trial_component_name] = (arn, sent | tags)

    async def delivered_steps(self, record: RunRecord) -> dict[str, int]:
        from .sagemaker_steps import highest_steps

        return await highest_steps(self.session, self._sagemaker, self._metrics, record.trial_component_name)

    async def describe_job(self, kind: str, name: str) -> dict[str, Any]:
        try:
            method, argument = self._JOB_DESCRIBERS[kind]
        except KeyError:
            raise ValueError(f"kind must be 'training', 'processing', 'transform' or 'tuning'; got {kind!r}") from None
        try:
            return dict(await self._call(getattr(self._sagemaker, method), **{argument: name}))
        except botocore.exceptions.ClientError as exc:
            if not_found(exc):
                raise BackendError(
                    f"the {kind} job {name!r} was not found in region {self._sagemaker.meta.region_name}: {exc}. "
                    "Check the region and that the job's ARN in the environment is right") from exc
            raise BackendError(f"could not describe the {kind} job {name!r}: {exc}. Check the IAM permission "
                               f"sagemaker:{method.title().replace('_', '')}") from exc
        except TransportError as exc:
            raise BackendError(f"could not describe the {kind} job {name!r}: {exc}") from exc

    async def list_runs(self, experiment_name: str, *, created_after: datetime.datetime | None = None,
                        created_before: datetime.datetime | None = None, sort_by: str = "CreationTime",
                        sort_order: str = "Descending", max_results: int | None = None,
                        where: Callable[[RunRecord], bool] | None = None) -> list[RunRecord]:
        return await sagemaker_listing.list_runs(self, experiment_name, created_after=created_after,
                                                 created_before=created_before, sort_by=sort_by,
                                                 sort_order=sort_order, max_results=max_results, where=where)

    async def run_groups(self, experiment_name: str) -> list[str]:
        """The trials whose trial components may be the experiment's runs (``sagemaker_listing``)."""
        return await sagemaker_listing.run_groups(self, experiment_name)

    def listed_run(self, component: dict[str, Any],
                   experiment_name: str) -> tuple[datetime.datetime, str, RunRecord] | None:
        """A Search result's run: when it was created, its name, its record (``sagemaker_listing``)."""
        return sagemaker_listing.listed_run(component, experiment_name)

    async def describe_experiment(self, experiment_name: str) -> dict[str, Any] | None:
        try:
            return dict(await self._call(self._sagemaker.describe_experiment, ExperimentName=experiment_name))
        except botocore.exceptions.ClientError as exc:
            if not_found(exc):
                return None
            raise BackendError(f"could not describe experiment {experiment_name!r}: {exc}") from exc
        except TransportError as exc:
            raise BackendError(f"could not describe experiment {experiment_name!r}: {exc}") from exc

    async def create_experiment(self, experiment_name: str, display_name: str | None = None,
                                description: str | None = None,
                                tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"ExperimentName": experiment_name}
        if display_name:
            kwargs["DisplayName"] = display_name
        if description:
            kwargs["Description"] = description
        try:
            created = await self._call(self._sagemaker.create_experiment, **kwargs)
            if tags:
                # Tags given to create are dropped by some implementations (moto); AddTags is kept by all.
                await self._call(self._sagemaker.add_tags, ResourceArn=created["ExperimentArn"], Tags=tags)
        except botocore.exceptions.ClientError as exc:
            if _already_exists(exc):
                raise BackendError(f"experiment {experiment_name!r} exists already: load it with "
                                   f"Experiment.load({experiment_name!r})") from exc
            raise BackendError(f"could not create experiment {experiment_name!r}: {exc}. Check the IAM "
                               "permission sagemaker:CreateExperiment") from exc
        except TransportError as exc:
            raise BackendError(f"could not create experiment {experiment_name!r}: {exc}") from exc
        return await self.describe_experiment(experiment_name) or {
            "ExperimentName": experiment_name, "ExperimentArn": created.get("ExperimentArn")}

    async def delete_experiment(self, experiment_name: str) -> None:
        sm = self._sagemaker
        try:
            for trial in await self._all(sm.list_trials, "TrialSummaries", ExperimentName=experiment_name):
                trial_name = trial["TrialName"]
                components = await self._all(sm.list_trial_components, "TrialComponentSummaries",
                                             TrialName=trial_name)
                for component in components:
                    name = component["TrialComponentName"]
                    # A trial component in another trial too cannot be deleted before it leaves it.
                    for parent in await self._all(sm.list_trials, "TrialSummaries", TrialComponentName=name):
                        await self._call(sm.disassociate_trial_component, TrialComponentName=name,
                                         TrialName=parent["TrialName"])
                    await self._call(sm.delete_trial_component, TrialComponentName=name)
                await self._call(sm.delete_trial, TrialName=trial_name)
            await self._call(sm.delete_experiment, ExperimentName=experiment_name)
        except (botocore.exceptions.ClientError, TransportError) as exc:
            raise BackendError(
                f"could not delete experiment {experiment_name!r} with its run groups and runs: {exc}. What was "
                "deleted stays deleted; call delete_all again to finish. IAM permissions used: sagemaker:"
                "ListTrials, ListTrialComponents, DisassociateTrialComponent, DeleteTrialComponent, "
                "DeleteTrial, DeleteExperiment") from exc

    async def _all(self, method: Callable[..., Awaitable[Any]], key: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item under ``key`` of a paginated List call."""
        items: list[dict[str, Any]] = []
        token = None
        while True:
            page = await self._call(method, **kwargs, **({"NextToken": token} if token else {}))
            items.extend(page.get(key) or ())
            token = page.get("NextToken")
            if not token:
                return items


def _already_exists(exc: botocore.exceptions.ClientError) -> bool:
    return error_code(exc) in ("ValidationException", "ResourceInUse") and "already exist" in str(exc).lower()


def _parameter(value: str | int | float) -> dict[str, Any]:
    return {"StringValue": value} if isinstance(value, str) else {"NumberValue": value}


def _artifact(artifact: Artifact) -> dict[str, Any]:
    out: dict[str, Any] = {"Value": artifact.value}
    if artifact.media_type:
        out["MediaType"] = artifact.media_type
    return out


def _tags_of(record: RunRecord) -> list[dict[str, str]]:
    """The trial component's tags: sagerun's Run tag, the parent of a child run, the user's."""
    parent = [{"Key": PARENT_TAG, "Value": record.parent}] if record.parent else []
    return [RUN_TAG, *parent, *record.tags]
