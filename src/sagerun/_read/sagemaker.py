"""Read · SageMaker Experiments read as a search reads it: the runs of each experiment through
Search (its run group and the run tag, with tags pushed down), their metric summaries, and
metric histories through BatchGetMetrics, up to 100 queries a request.

Every call goes through the session's retry policy, so a throttled Search is paced and sent
again, and through one ``Cache``: the same read within ``CACHE_SECONDS`` is not made again, and
reads go one at a time. Status and parameters are filtered after the answer: Search's property
names for them are not the same on every implementation (moto refuses them).
"""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

import botocore.exceptions
import numpy as np

from .._model.errors import BackendError, TransportError
from .._model.naming import RUN_TAG
from .._model.records import RunRecord
from .._model.session import Session
from ..backends.aws import call_with_retries, open_client
from ..backends.sagemaker import SageMakerBackend
from ..backends.sagemaker_listing import aware
from .cache import Cache
from .query import Query
from .rows import History, MetricStats, RunRow

#: seconds a read of SageMaker is kept before it is made again
CACHE_SECONDS = 10.0
#: queries one BatchGetMetrics request may carry
QUERIES_PER_REQUEST = 100
_PERMISSIONS = ("sagemaker:ListExperiments, sagemaker:Search, sagemaker:DescribeTrialComponent, "
                "sagemaker:BatchGetMetrics")


class SageMakerReader:
    """Reads the SageMaker Experiments of ``session``; use as ``async with``.

    Raises:
        BackendError: on entering, no credentials or SageMaker cannot be reached; later, a read
            refused or failed past the retry deadline (the message names the IAM permissions).
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache = Cache(CACHE_SECONDS)
        self._stack = contextlib.AsyncExitStack()
        self._backend: SageMakerBackend | None = None
        self._sagemaker: Any = None
        self._metrics: Any = None
        self._arns: dict[str, str] = {}

    async def __aenter__(self) -> SageMakerReader:
        async with contextlib.AsyncExitStack() as stack:
            self._backend = await stack.enter_async_context(SageMakerBackend(self.session))
            self._sagemaker = await open_client(stack, self.session, "sagemaker")
            self._metrics = await open_client(stack, self.session, "sagemaker-metrics")
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def call(self, client: str, method: str, **kwargs: Any) -> Any:
        """``client.method(**kwargs)`` under the retry policy, its failure a ``BackendError``."""
        target = getattr(self._sagemaker if client == "sagemaker" else self._metrics, method)
        try:
            return await call_with_retries(self.session, target, **kwargs)
        except (botocore.exceptions.ClientError, TransportError) as exc:
            raise BackendError(f"could not read SageMaker ({method}): {exc}. Check the credentials, the region "
                               f"and the IAM permissions ({_PERMISSIONS})") from exc

    async def experiments(self) -> list[str]:
        """Every experiment's name (ListExperiments, all pages)."""
        async def read() -> list[str]:
            names: list[str] = []
            kwargs: dict[str, Any] = {}
            while True:
                page = await self.call("sagemaker", "list_experiments", **kwargs)
                names += [e["ExperimentName"] for e in page.get("ExperimentSummaries", [])]
                if not page.get("NextToken"):
                    return names
                kwargs["NextToken"] = page["NextToken"]

        return await self.cache.get("experiments", read)  # type: ignore[no-any-return]

    async def runs(self, query: Query, *, all_stats: bool = False) -> list[RunRow]:
        """The rows of the runs ``query`` may keep, experiment by experiment (with SageMaker's
        summaries, every statistic: ``all_stats`` changes nothing)."""
        names = query.experiment_names if query.experiment_names is not None else await self.experiments()
        rows: list[RunRow] = []
        for name in names:
            rows += await self.cache.get(("runs", name, tuple(sorted(query.tags.items()))),
                                         lambda name=name: self._search(name, query))  # type: ignore[misc]
        return rows

    async def _search(self, experiment: str, query: Query) -> list[RunRow]:
        assert self._backend is not None
        # Parents first: moto stops reading filters after the first tag filter.
        try:
            groups = await self._backend.run_groups(experiment)
        except (botocore.exceptions.ClientError, TransportError) as exc:
            raise BackendError(f"could not read SageMaker (ListTrials): {exc}. Check the IAM permissions "
                               f"({_PERMISSIONS}, sagemaker:ListTrials)") from exc
        rows: list[RunRow] = []
        for group in groups:
            rows += await self._search_group(experiment, group, query)
        return rows

    async def _search_group(self, experiment: str, group: str, query: Query) -> list[RunRow]:
        assert self._backend is not None
        filters = [{"Name": "Parents.TrialName", "Operator": "Equals", "Value": group},
                   {"Name": f"Tags.{RUN_TAG['Key']}", "Operator": "Equals", "Value": RUN_TAG["Value"]}]
        filters += [{"Name": f"Tags.{key}", "Operator": "Equals", "Value": value} for key, value in query.tags.items()]
        rows: list[RunRow] = []
        token = None
        while True:
            page = await self.call("sagemaker", "search", Resource="ExperimentTrialComponent", MaxResults=100,
                                   SearchExpression={"Filters": filters}, **({"NextToken": token} if token else {}))
            for result in page.get("Results") or ():
                component = result.get("TrialComponent") or {}
                listed = self._backend.listed_run(component, experiment)
                if listed is None:
                    continue
                created, _, record = listed
                self._arns[record.trial_component_name] = str(component.get("TrialComponentArn", ""))
                summaries = component.get("Metrics")
                if summaries is None or not all("MetricName" in m for m in summaries):
                    # A Search that leaves them out, or half out (moto's gives [{}]): they are described.
                    summaries = (await self._described(record.trial_component_name)).get("Metrics") or []
                rows.append(RunRow(
                    experiment=experiment, run=record.run_name, run_group=group,
                    trial_component_name=record.trial_component_name, status=record.status,
                    status_message=record.status_message, start_time=aware(component.get("StartTime")),
                    end_time=record.end_time, created_time=created, parent=record.parent,
                    tags={t["Key"]: t["Value"] for t in record.tags}, parameters=dict(record.parameters),
                    metrics={m["MetricName"]: _stats(m) for m in sorted(summaries, key=lambda m: m["MetricName"])}))
            token = page.get("NextToken")
            if not token:
                return rows

    async def records(self, experiment: str) -> list[RunRecord]:
        """The runs of ``experiment`` as ``list_runs`` reads them, artifacts included (cached)."""
        assert self._backend is not None
        backend = self._backend
        return await self.cache.get(("records", experiment), lambda: backend.list_runs(experiment))  # type: ignore

    async def described(self, trial_component_name: str) -> dict[str, Any]:
        """DescribeTrialComponent's answer (cached)."""
        return await self.cache.get(("describe", trial_component_name),  # type: ignore[no-any-return]
                                    lambda: self._described(trial_component_name))

    async def history(self, trial_component_name: str, name: str, fresh: Any = None) -> History:
        """One metric's history (cached; a new ``fresh`` reads it again)."""
        async def read() -> History:
            return (await self._batch([(trial_component_name, name)]))[(trial_component_name, name)]

        return await self.cache.get(("history", trial_component_name, name, fresh), read)  # type: ignore

    async def _described(self, trial_component_name: str) -> dict[str, Any]:
        answer = await self.call("sagemaker", "describe_trial_component", TrialComponentName=trial_component_name)
        self._arns[trial_component_name] = str(answer.get("TrialComponentArn", ""))
        return dict(answer)

    async def arn(self, trial_component_name: str) -> str:
        """The trial component's ARN, which BatchGetMetrics addresses it by."""
        if trial_component_name not in self._arns:
            await self._described(trial_component_name)
        return self._arns[trial_component_name]

    async def histories(self, rows: Sequence[RunRow], names: Sequence[str] | None) -> dict[tuple[str, str], History]:
        """The history of each metric of ``names`` (all the run has when ``None``) of each run:
        the last value at each step, and when it was logged."""
        return await self._batch([(row.trial_component_name, name) for row in rows
                                  for name in (names if names is not None else list(row.metrics))])

    async def _batch(self, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], History]:
        found: dict[tuple[str, str], History] = {}
        per_request = QUERIES_PER_REQUEST // 2  # two queries a series: by step, and by time
        for start in range(0, len(wanted), per_request):
            part = wanted[start:start + per_request]
            queries = []
            for component, name in part:
                query = {"MetricName": name, "ResourceArn": await self.arn(component), "MetricStat": "Last",
                         "Period": "IterationNumber"}
                queries += [{**query, "XAxisType": "IterationNumber"}, {**query, "XAxisType": "Timestamp"}]
            answer = await self.call("metrics", "batch_get_metrics", MetricQueries=queries)
            results = answer.get("MetricQueryResults") or []
            for index, key in enumerate(part):
                by_step, by_time = results[2 * index], results[2 * index + 1]
                values = np.asarray(by_step.get("MetricValues") or [], np.float64)
                times = np.asarray(by_time.get("XAxisValues") or [], np.float64)
                found[key] = History(np.asarray(by_step.get("XAxisValues") or [], np.int64),
                                     times if len(times) == len(values) else np.zeros(len(values)), values)
        return found


def _stats(summary: dict[str, Any]) -> MetricStats:
    def number(key: str) -> float | None:
        value = summary.get(key)
        return None if value is None else float(value)

    count = summary.get("Count")
    return MetricStats(last=number("Last"), min=number("Min"), max=number("Max"), avg=number("Avg"),
                       count=None if count is None else int(count), std=number("StdDev"))

