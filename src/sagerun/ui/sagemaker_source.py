"""UI · runs read from SageMaker Experiments (``sagerun ui --source sagemaker``): the experiments
(ListExperiments, or the one named), their runs (Search, as ``list_runs`` reads them), one run
(DescribeTrialComponent, whose metric summaries name its metrics) and a metric's points
(BatchGetMetrics: the last value at each step, and when it was logged).

SageMaker throttles Search (sagemaker-python-sdk issue #2293), and a UI asks again and again, so
reads are cached for ``CACHE_SECONDS`` and made by one request at a time: a page opened by many
tabs costs one round of calls, and a busy account is not driven into throttling by a browser.
Tables and chart documents are read from S3 as the local store's are read from disk: a table's
head line and one page of rows, a chart whole. Other files are listed with their S3 URI.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Awaitable, Callable

import anyio
import anyio.to_thread
import botocore.exceptions
import numpy as np

from .._artifacts.charts import MEDIA_TYPE
from .._artifacts.preview import ArtifactNotFoundError, chart_at, document_kind, table_at
from .._model.errors import BackendError, TransportError
from .._model.naming import check_name
from .._model.records import RunRecord
from .._model.session import Session
from .._model.tags import as_dict
from ..backends.aws import call_with_retries, open_client
from ..backends.sagemaker import SageMakerBackend
from ..store import queries
from .data import page_answer, series_answer

#: seconds a read of SageMaker is kept before it is made again
CACHE_SECONDS = 10.0
#: the statistic read at each step: the value logged last, as the local store draws it
_LAST = "Last"


class SageMakerSource:
    """The UI's reads of SageMaker, for ``session``; the experiment ``experiment`` only, or all.
    Use as ``async with``.

    Raises:
        BackendError: on entering, no credentials or SageMaker cannot be reached.
    """

    def __init__(self, session: Session, experiment: str | None = None) -> None:
        self.session = session
        self.experiment = experiment
        self._stack = contextlib.AsyncExitStack()
        self._backend: SageMakerBackend | None = None
        self._sagemaker: Any = None
        self._metrics: Any = None
        self._cache: dict[Any, tuple[float, Any]] = {}
        self._one_at_a_time = anyio.Lock()

    async def __aenter__(self) -> SageMakerSource:
        async with contextlib.AsyncExitStack() as stack:
            self._backend = await stack.enter_async_context(SageMakerBackend(self.session))
            self._sagemaker = await open_client(stack, self.session, "sagemaker")
            self._metrics = await open_client(stack, self.session, "sagemaker-metrics")
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def _cached(self, key: Any, read: Callable[[], Awaitable[Any]]) -> Any:
        async with self._one_at_a_time:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
                return hit[1]
            try:
                value = await read()
            except (botocore.exceptions.ClientError, TransportError) as exc:
                raise BackendError(f"could not read SageMaker: {exc}. Check the credentials, the region and the "
                                   "IAM permissions (sagemaker:ListExperiments, Search, DescribeTrialComponent, "
                                   "BatchGetMetrics)") from exc
            self._cache[key] = (time.monotonic(), value)
            return value

    async def _records(self) -> list[RunRecord]:
        async def read() -> list[RunRecord]:
            assert self._backend is not None
            names = [self.experiment] if self.experiment else await self._experiments()
            found: list[RunRecord] = []
            for name in names:
                found += await self._backend.list_runs(name)
            return found

        return await self._cached("runs", read)  # type: ignore[no-any-return]

    async def _experiments(self) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = await call_with_retries(self.session, self._sagemaker.list_experiments, **kwargs)
            names += [e["ExperimentName"] for e in page.get("ExperimentSummaries", [])]
            if not page.get("NextToken"):
                return names
            kwargs["NextToken"] = page["NextToken"]

    async def runs(self) -> list[dict[str, Any]]:
        records = await self._records()
        refs = {r.trial_component_name: _ref(r) for r in records}
        return [_listed(r, refs) for r in records]

    async def _find(self, ref: str) -> RunRecord:
        experiment, _, name = ref.partition("/")
        wanted = (check_name("EXPERIMENT", experiment), check_name("RUN", name))
        for record in await self._records():
            if (record.experiment_name, record.run_name) == wanted:
                return record
        raise queries.RunNotFoundError(f"no run {ref!r} in SageMaker" + (
            f" experiment {self.experiment!r}" if self.experiment else ""))

    async def _described(self, record: RunRecord) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            return dict(await call_with_retries(self.session, self._sagemaker.describe_trial_component,
                                                TrialComponentName=record.trial_component_name))

        return await self._cached(("describe", record.trial_component_name), read)  # type: ignore[no-any-return]

    async def run(self, ref: str) -> dict[str, Any]:
        record = await self._find(ref)
        described = await self._described(record)
        records = await self._records()
        refs = {r.trial_component_name: _ref(r) for r in records}
        metrics = [{"name": m["MetricName"], "count": m.get("Count"), "min": m.get("Min"), "max": m.get("Max"),
                    "last": m.get("Last"), "last_step": None, "last_timestamp": None}
                   for m in described.get("Metrics", [])]
        kinds = await self._kinds(record)
        artifacts = {direction: [{"name": name, "value": a.value, "media_type": a.media_type,
                                  "kind": kinds.get(a.value, "value"), "url": None} for name, a in held.items()]
                     for direction, held in (("input", record.input_artifacts), ("output", record.output_artifacts))}
        return {**_listed(record, refs), "parent_ref": refs.get(record.parent or ""),
                "children": [refs[r.trial_component_name] for r in records if r.parent == record.trial_component_name],
                "metrics": sorted(metrics, key=lambda m: m["name"]), "artifacts": artifacts, "models": [],
                "metric_count": len(metrics), "arn": described.get("TrialComponentArn")}

    async def series(self, ref: str, name: str, buckets: int) -> dict[str, Any]:
        record = await self._find(ref)
        described = await self._described(record)
        if name not in {m["MetricName"] for m in described.get("Metrics", [])}:
            raise KeyError(f"run {ref} has no metric {name!r}")
        arn = described["TrialComponentArn"]

        async def read() -> Any:
            query = {"MetricName": name, "ResourceArn": arn, "MetricStat": _LAST, "Period": "IterationNumber"}
            return await call_with_retries(self.session, self._metrics.batch_get_metrics, MetricQueries=[
                {**query, "XAxisType": "IterationNumber"}, {**query, "XAxisType": "Timestamp"}])

        # A run still logging is read again every 2 s (the UI's live charts), an ended one is cached.
        fresh = int(time.monotonic() // 2) if record.status == "InProgress" else None
        answer = await self._cached(("series", arn, name, fresh), read)
        by_step, by_time = answer["MetricQueryResults"]
        values = np.asarray(by_step.get("MetricValues", []), dtype=float)
        steps = np.asarray(by_step.get("XAxisValues", []), dtype=np.int64)
        times = np.asarray(by_time.get("XAxisValues", [0] * len(values)), dtype=float)
        if len(times) != len(values):
            times = np.zeros(len(values))
        return series_answer(_ref(record), name, record.status, steps, times, values, buckets)

    async def _kinds(self, record: RunRecord) -> dict[str, str]:
        """What each S3 artifact of the run is: a JSON one's first line says (one ranged read each)."""
        async def read() -> dict[str, str]:
            found = {}
            for artifact in [*record.input_artifacts.values(), *record.output_artifacts.values()]:
                if not artifact.value.startswith("s3://"):
                    continue
                found[artifact.value] = "S3 object"
                if artifact.media_type == MEDIA_TYPE:
                    found[artifact.value] = await anyio.to_thread.run_sync(document_kind, artifact.value, self.session)
            return found

        return await self._cached(("kinds", record.trial_component_name), read)  # type: ignore[no-any-return]

    async def _artifact(self, ref: str, name: str) -> tuple[RunRecord, str]:
        record = await self._find(ref)
        artifact = record.output_artifacts.get(name) or record.input_artifacts.get(name)
        if artifact is None or not artifact.value.startswith("s3://"):
            raise ArtifactNotFoundError(f"run {ref} has no artifact {name!r} in S3")
        return record, artifact.value

    async def table_page(self, ref: str, name: str, offset: int, limit: int) -> dict[str, Any]:
        """A page of the table ``name``, read from S3: its head line and those rows only."""
        _, uri = await self._artifact(ref, name)
        preview = await anyio.to_thread.run_sync(lambda: table_at(uri, f"{ref} {name}", limit, offset,
                                                                  session=self.session))
        return page_answer(name, preview, offset)

    async def chart(self, ref: str, name: str) -> dict[str, Any]:
        _, uri = await self._artifact(ref, name)
        return await self._cached(("chart", uri), lambda: anyio.to_thread.run_sync(
            lambda: chart_at(uri, f"{ref} {name}", session=self.session)))  # type: ignore[no-any-return]

    async def file_path(self, ref: str, relative: str) -> str | None:
        return None


def _ref(record: RunRecord) -> str:
    return f"{record.experiment_name}/{record.run_name}"


def _listed(record: RunRecord, refs: dict[str, str]) -> dict[str, Any]:
    start = record.start_time.timestamp() if record.start_time else None
    end = record.end_time.timestamp() if record.end_time else None
    return {"experiment": record.experiment_name, "run": record.run_name, "ref": _ref(record),
            "trial_component_name": record.trial_component_name, "display_name": record.run_display_name,
            "status": record.status, "status_message": record.status_message,
            "start_time": queries.iso(start), "end_time": queries.iso(end),
            "duration": end - start if start is not None and end is not None else None,
            "metric_count": None, "point_count": None, "parent": record.parent,
            "tags": as_dict(record.tags), "parameters": record.parameters}
