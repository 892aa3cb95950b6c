"""SageMaker Experiments through aioboto3: control calls and BatchPutMetrics.

One client per service for the life of the backend, shared by the tasks of one event loop, with
botocore's retries switched off: sagerun's retry policy is the only one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from typing import Any, Awaitable, Callable, Sequence

import aiohttp
import anyio
import aioboto3
import botocore.config
import botocore.exceptions

from .._exceptions import BackendError, TransportError
from .._ingest.points import Point
from .._ingest.retry import retrying
from .._naming import RUN_TAG
from .._session import Session
from .base import Artifact, Backend, ItemError, RunRecord
from .metrics_http import MetricsHTTP, classify

logger = logging.getLogger("sagerun")

_CONNECTION_ERRORS = (
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    OSError,
)


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def as_transport_error(exc: BaseException) -> TransportError | None:
    """The retryable ``TransportError`` a botocore or network failure stands for, else ``None``."""
    if isinstance(exc, botocore.exceptions.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        error = classify(status, error_code(exc), str(exc))
        return error if error.retryable else None
    if isinstance(exc, _CONNECTION_ERRORS):
        never_sent = isinstance(exc, (botocore.exceptions.EndpointConnectionError,
                                      botocore.exceptions.ConnectTimeoutError, aiohttp.ClientConnectorError))
        return TransportError(f"connection failed: {type(exc).__name__}: {exc}", retryable=True,
                              unanswered=not never_sent)
    return None


class SageMakerBackend(Backend):
    """Runs as trial components of SageMaker Experiments; metrics through BatchPutMetrics."""

    max_batch = 10

    def __init__(self, session: Session) -> None:
        self.session = session
        self._stack = contextlib.AsyncExitStack()
        self._sagemaker: Any = None
        self._metrics: Any = None
        self._metrics_http: MetricsHTTP | None = None

    async def __aenter__(self) -> SageMakerBackend:
        boto = self.session.boto_session or aioboto3.Session()
        config = botocore.config.Config(
            retries={"total_max_attempts": 1},
            max_pool_connections=max(10, self.session.max_in_flight),
            connect_timeout=self.session.request_timeout,
            read_timeout=self.session.request_timeout,
        )
        async with contextlib.AsyncExitStack() as stack:
            self._sagemaker = await stack.enter_async_context(boto.client(
                "sagemaker", region_name=self.session.region,
                endpoint_url=self.session.endpoint_for("sagemaker"), config=config))
            self._metrics = await stack.enter_async_context(boto.client(
                "sagemaker-metrics", region_name=self.session.region,
                endpoint_url=self.session.endpoint_for("sagemaker-metrics"), config=config))
            if self.session.metrics_client == "http":
                credentials = await boto.get_credentials()
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

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._stack.aclose()

    async def _call(self, method: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        """One control call under the retry policy; a final ``ClientError`` is raised as it is."""
        async for attempt in retrying(self.session):
            with attempt:
                try:
                    return await method(**kwargs)
                except Exception as exc:
                    transient = as_transport_error(exc)
                    if transient is None:
                        raise
                    raise transient from exc
        raise AssertionError("unreachable")  # pragma: no cover

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
            if not _not_found(exc):
                raise
            await self._create_ignoring_exists(sm.create_trial, TrialName=record.trial_name,
                                               ExperimentName=record.experiment_name)
        try:
            described = await self._call(sm.describe_trial_component, TrialComponentName=record.trial_component_name)
        except botocore.exceptions.ClientError as exc:
            if not _not_found(exc):
                raise
            kwargs = {"TrialComponentName": record.trial_component_name, "Tags": [RUN_TAG, *record.tags]}
            if record.run_display_name:
                kwargs["DisplayName"] = record.run_display_name
            created = await self._create_ignoring_exists(sm.create_trial_component, **kwargs)
            if created is not None:
                # Tags given to create are dropped by some implementations (moto); AddTags is kept by all.
                await self._call(sm.add_tags, ResourceArn=created["TrialComponentArn"], Tags=[RUN_TAG, *record.tags])
            await self._associate(record)
            return record
        await self._associate(record)
        return _merge_described(record, described)

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
        except (botocore.exceptions.ClientError, TransportError) as exc:
            raise BackendError(
                f"could not save run {record.trial_component_name!r} (status {record.status}): {exc}"
            ) from exc

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


def _already_exists(exc: botocore.exceptions.ClientError) -> bool:
    return error_code(exc) in ("ValidationException", "ResourceInUse") and "already exist" in str(exc).lower()


def _not_found(exc: botocore.exceptions.ClientError) -> bool:
    # SageMaker answers ResourceNotFound; moto a ValidationException that "could not find" it.
    message = str(exc).lower()
    return error_code(exc).startswith("ResourceNotFound") or any(
        words in message for words in ("not found", "does not exist", "could not find"))


def _parameter(value: str | int | float) -> dict[str, Any]:
    return {"StringValue": value} if isinstance(value, str) else {"NumberValue": value}


def _artifact(artifact: Artifact) -> dict[str, Any]:
    out: dict[str, Any] = {"Value": artifact.value}
    if artifact.media_type:
        out["MediaType"] = artifact.media_type
    return out


def _merge_described(record: RunRecord, described: dict[str, Any]) -> RunRecord:
    for name, value in (described.get("Parameters") or {}).items():
        record.parameters.setdefault(name, value.get("StringValue", value.get("NumberValue")))
    for source, target in (("InputArtifacts", record.input_artifacts), ("OutputArtifacts", record.output_artifacts)):
        for name, value in (described.get(source) or {}).items():
            target.setdefault(name, Artifact(value["Value"], value.get("MediaType")))
    start = described.get("StartTime")
    if isinstance(start, datetime.datetime):
        record.start_time = start
    record.run_display_name = record.run_display_name or described.get("DisplayName")
    return record
