"""Read · an MLflow tracking server read as a search reads it: ``runs/search`` with the filters its
filter string takes, and ``metrics/get-history`` a page at a time.

MLflow keeps only a metric's latest value with a run: a row's ``min``, ``max``, ``avg`` and
``count`` stay empty unless the search asks for ``stats="all"``, which reads each history.
"""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

import numpy as np

from .._model.errors import BackendError, TransportError
from .._model.retry import retry_call
from .._model.session import Session
from ..backends.mlflow import STATUSES, MlflowBackend, run_record
from ..backends.mlflow_rest import MlflowError
from .query import Query
from .rows import History, MetricStats, RunRow

#: points a ``metrics/get-history`` page holds (MLflow's largest page)
HISTORY_PAGE = 25_000


class MlflowReader:
    """Reads the MLflow tracking server of ``session``; use as ``async with``.

    Raises:
        BackendError: no tracking server is configured, or it cannot be read.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._stack = contextlib.AsyncExitStack()
        self._backend = MlflowBackend(session)

    async def __aenter__(self) -> MlflowReader:
        await self._stack.enter_async_context(self._backend)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def _call(self, method: str, endpoint: str, body: dict[str, Any] | None = None,
                    query: dict[str, str] | None = None) -> dict[str, Any]:
        rest = self._backend.rest
        try:
            return await retry_call(self.session, lambda: rest.call(method, endpoint, body, query=query))
        except (MlflowError, TransportError) as exc:
            raise BackendError(f"could not read {endpoint} of the MLflow server {rest.address.base}: {exc}") from exc

    async def _experiments(self, names: Sequence[str] | None) -> dict[str, str]:
        """Experiment ids by name: those of ``names`` that exist, or all."""
        found: dict[str, str] = {}
        token = None
        while True:
            body: dict[str, Any] = {"max_results": 1000, **({"page_token": token} if token else {})}
            answer = await self._call("POST", "experiments/search", body)
            found.update({e["name"]: str(e["experiment_id"]) for e in answer.get("experiments") or ()})
            token = answer.get("next_page_token")
            if not token:
                break
        return found if names is None else {name: found[name] for name in names if name in found}

    async def runs(self, query: Query, *, all_stats: bool = False) -> list[RunRow]:
        """The rows of the runs ``query`` may keep; tags, parameters and one status filtered by the server."""
        experiments = await self._experiments(query.experiment_names)
        if not experiments:
            return []
        names = {experiment_id: name for name, experiment_id in experiments.items()}
        rows: list[RunRow] = []
        token = None
        while True:
            body: dict[str, Any] = {"experiment_ids": list(names), "filter": _filter(query), "max_results": 1000}
            if token:
                body["page_token"] = token
            answer = await self._call("POST", "runs/search", body)
            rows += [_row(run, names) for run in answer.get("runs") or ()]
            token = answer.get("next_page_token")
            if not token:
                break
        if all_stats:
            histories = await self.histories(rows, None)
            rows = [_with_stats(row, histories) for row in rows]
        return rows

    async def histories(self, rows: Sequence[RunRow], names: Sequence[str] | None) -> dict[tuple[str, str], History]:
        """The history of each metric of ``names`` (all the run has when ``None``) of each run."""
        found: dict[tuple[str, str], History] = {}
        for row in rows:
            for name in (names if names is not None else list(row.metrics)):
                found[(row.trial_component_name, name)] = await self._history(row.trial_component_name, name)
        return found

    async def _history(self, run_id: str, key: str) -> History:
        steps: list[int] = []
        times: list[int] = []
        values: list[float] = []
        token = None
        while True:
            query = {"run_id": run_id, "metric_key": key, "max_results": str(HISTORY_PAGE),
                     **({"page_token": token} if token else {})}
            answer = await self._call("GET", "metrics/get-history", query=query)
            for point in answer.get("metrics") or ():
                steps.append(int(point.get("step", 0)))
                times.append(int(point.get("timestamp", 0)))
                values.append(float(point["value"]))
            token = answer.get("next_page_token")
            if not token:
                break
        return History(np.asarray(steps, np.int64), np.asarray(times, np.float64) / 1000.0,
                       np.asarray(values, np.float64))


def _filter(query: Query) -> str:
    """What MLflow's filter string can say of ``query``; the rest is filtered after."""
    terms = [f"tags.`{key}` = '{_quoted(value)}'" for key, value in query.tags.items()]
    terms += [f"params.`{name}` = '{_quoted(str(value))}'" for name, value in query.parameters.items()
              if isinstance(value, str)]  # numbers are kept as text ("0.1"): compared after, as numbers
    if len(query.statuses) == 1 and query.statuses[0] in STATUSES:
        terms.append(f"attributes.status = '{STATUSES[query.statuses[0]]}'")
    return " and ".join(terms)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _row(run: dict[str, Any], experiments: dict[str, str]) -> RunRow:
    record = run_record(run, None, experiments.get(str(run["info"].get("experiment_id")), ""))
    latest = {m["key"]: MetricStats(last=float(m["value"])) for m in run.get("data", {}).get("metrics") or ()}
    return RunRow(
        experiment=record.experiment_name, run=record.run_name, run_group=None,
        trial_component_name=record.trial_component_name, status=record.status,
        status_message=record.status_message, start_time=record.start_time, end_time=record.end_time,
        created_time=record.start_time, parent=record.parent, tags={t["Key"]: t["Value"] for t in record.tags},
        parameters=dict(record.parameters), metrics=dict(sorted(latest.items())))


def _with_stats(row: RunRow, histories: dict[tuple[str, str], History]) -> RunRow:
    metrics = {name: MetricStats.of(histories[(row.trial_component_name, name)].values) for name in row.metrics}
    return RunRow(**{**row.__dict__, "metrics": metrics})
