"""UI · runs read from SageMaker Experiments (``sagerun ui --source sagemaker``), through the read
layer's ``SageMakerReader``: the experiments, their runs as ``list_runs`` reads them, one run
(DescribeTrialComponent, whose metric summaries name its metrics) and a metric's points
(BatchGetMetrics: the last value at each step, and when it was logged).

The reader keeps each answer for a while and reads one request at a time, so that a page opened
by many tabs costs one round of calls and a busy account is not driven into throttling by a
browser. Tables and chart documents are read from S3 as the local store's are read from disk: a
table's head line and one page of rows, a chart whole. Other files are listed with their S3 URI.
"""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread

from .._artifacts.charts import MEDIA_TYPE
from .._artifacts.preview import ArtifactNotFoundError, chart_at, document_kind, table_at
from .._model.naming import check_name
from .._model.records import RunRecord
from .._model.session import Session
from .._model.tags import as_dict
from .._read.sagemaker import SageMakerReader
from ..store import queries
from .data import page_answer, series_answer


class SageMakerSource:
    """The UI's reads of SageMaker, for ``session``; the experiment ``experiment`` only, or all.
    Use as ``async with``.

    Raises:
        BackendError: on entering, no credentials or SageMaker cannot be reached.
    """

    def __init__(self, session: Session, experiment: str | None = None) -> None:
        self.session = session
        self.experiment = experiment
        self._reader = SageMakerReader(session)

    async def __aenter__(self) -> SageMakerSource:
        await self._reader.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._reader.__aexit__(*exc_info)

    async def _records(self) -> list[RunRecord]:
        names = [self.experiment] if self.experiment else await self._reader.experiments()
        found: list[RunRecord] = []
        for name in names:
            found += await self._reader.records(name)
        return found

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
        return await self._reader.described(record.trial_component_name)

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
        # A run still logging is read again every 2 s (the UI's live charts), an ended one is cached.
        fresh = int(time.monotonic() // 2) if record.status == "InProgress" else None
        history = await self._reader.history(record.trial_component_name, name, fresh)
        return series_answer(_ref(record), name, record.status, history.steps, history.timestamps, history.values,
                             buckets)

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

        return await self._reader.cache.get(("kinds", record.trial_component_name), read)  # type: ignore

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
        return await self._reader.cache.get(("chart", uri), lambda: anyio.to_thread.run_sync(
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
