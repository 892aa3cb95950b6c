"""Backends · an MLflow tracking server as a backend: any MLflow server, or SageMaker's managed MLflow.

What maps to what:

* an Experiment is an MLflow experiment, found by name or created;
* a Run is an MLflow run of that experiment, found by its run name (the newest, as a SageMaker
  run is found by its names) or created; its MLflow run id stands where SageMaker has the trial
  component name, so the engine, the spool and ``sagerun sync`` address it by that id;
* status InProgress / Completed / Failed / Stopped is RUNNING / FINISHED / FAILED / KILLED, the
  failure message the tag ``sagerun.status_message``;
* parameters are params, sent once each (MLflow refuses a changed value: the run refuses it at
  the call), tags are tags, metrics go through ``runs/log-batch``, 1,000 a request.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any, Callable, Sequence

import anyio

from .._model.answers import ItemError
from .._model.errors import BackendError, TransportError
from .._model.points import Point
from .._model.registry import EXPERIMENT_KEY, ModelRequest, ModelVersion
from .._model.records import Artifact, ParameterValue, RunRecord
from .._model.retry import retry_call
from .._model.session import Session
from .._model.sink import MetricsTarget
from .._model.tags import as_dict, as_list
from .aws import boto_session
from .base import Backend
from .mlflow_rest import METRICS_PER_BATCH, MlflowError, MlflowREST, log_metrics
#: params and tags together one request may carry (MAX_PARAMS_TAGS_PER_BATCH)
PARAMS_TAGS_PER_BATCH = 100
#: sagerun's statuses as MLflow's
STATUSES = {"InProgress": "RUNNING", "Completed": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}
_FROM_MLFLOW = {v: k for k, v in STATUSES.items()} | {"SCHEDULED": "InProgress"}
STATUS_MESSAGE_TAG = "sagerun.status_message"
PARENT_TAG = "mlflow.parentRunId"
#: the run's tables, as MLflow's UI finds them: [{"path": "<file>.json", "type": "table"}]
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"
ARTIFACT_TAG = "sagerun.artifact."


class MlflowBackend(Backend):
    """Runs and metrics in the MLflow tracking server of ``session.tracking_uri`` (else
    ``MLFLOW_TRACKING_URI``); use as ``async with``."""

    max_batch = METRICS_PER_BATCH
    remote = True
    immutable_parameters = True

    def __init__(self, session: Session) -> None:
        self.session = session
        uri = session.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            raise BackendError("the mlflow backend needs a tracking server: Session(tracking_uri=...) or "
                               "MLFLOW_TRACKING_URI (an http(s):// URL or a SageMaker MLflow ARN)")
        self.tracking_uri = uri
        self._rest: MlflowREST | None = None
        self._sent_params: dict[str, dict[str, str]] = {}  # run id -> params the server has
        self._sent_tags: dict[str, dict[str, str]] = {}
        self.artifact_uris: dict[str, str] = {}
        """Each opened run's ``artifact_uri``, where its files go."""

    async def __aenter__(self) -> MlflowBackend:
        credentials = None
        if self.tracking_uri.startswith("arn:"):
            credentials = await boto_session(self.session).get_credentials()
            if credentials is None:
                raise BackendError(f"no AWS credentials found to sign requests to {self.tracking_uri}: configure "
                                   "them (environment, ~/.aws, or an instance role)")
        try:
            self._rest = MlflowREST(self.tracking_uri, credentials=credentials, connections=self.session.max_in_flight,
                                    timeout=self.session.request_timeout)
        except ValueError as exc:
            raise BackendError(str(exc)) from None
        return self

    async def aclose(self) -> None:
        rest, self._rest = self._rest, None
        if rest is not None:
            with anyio.CancelScope(shield=True):
                await rest.aclose()

    @property
    def rest(self) -> MlflowREST:
        if self._rest is None:
            raise RuntimeError("the mlflow backend is not open: use it as 'async with MlflowBackend(session)'")
        return self._rest

    async def _call(self, method: str, endpoint: str, body: dict[str, Any] | None = None,
                    query: dict[str, str] | None = None) -> dict[str, Any]:
        """A control call under the session's retry policy (throttling, 5xx, the network)."""
        return await retry_call(self.session, lambda: self.rest.call(method, endpoint, body, query=query))

    def _fail(self, what: str, exc: Exception) -> BackendError:
        return BackendError(f"could not {what} on the MLflow server {self.rest.address.base}: {exc}")

    # -- experiments --------------------------------------------------------------------------------

    async def _experiment(self, name: str) -> dict[str, Any] | None:
        try:
            answer = await self._call("GET", "experiments/get-by-name", query={"experiment_name": name})
        except MlflowError as exc:
            if exc.code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return answer.get("experiment")

    async def _experiment_id(self, name: str) -> str:
        found = await self._experiment(name)
        if found is not None:
            return str(found["experiment_id"])
        try:
            return str((await self._call("POST", "experiments/create", {"name": name}))["experiment_id"])
        except MlflowError as exc:
            if exc.code != "RESOURCE_ALREADY_EXISTS":  # created by another process meanwhile
                raise
        found = await self._experiment(name)
        assert found is not None
        return str(found["experiment_id"])

    async def describe_experiment(self, experiment_name: str) -> dict[str, object] | None:
        try:
            found = await self._experiment(experiment_name)
        except (MlflowError, TransportError) as exc:
            raise self._fail(f"read experiment {experiment_name!r}", exc) from exc
        return None if found is None else _described(found)

    async def create_experiment(self, experiment_name: str, display_name: str | None = None,
                                description: str | None = None,
                                tags: list[dict[str, str]] | None = None) -> dict[str, object]:
        mlflow_tags = [{"key": t["Key"], "value": t["Value"]} for t in tags or ()]
        if description:
            mlflow_tags.append({"key": "mlflow.note.content", "value": description})
        try:
            await self._call("POST", "experiments/create", {"name": experiment_name, "tags": mlflow_tags})
            found = await self._experiment(experiment_name)
        except MlflowError as exc:
            if exc.code == "RESOURCE_ALREADY_EXISTS":
                raise BackendError(f"experiment {experiment_name!r} exists already: load it with "
                                   "Experiment.load(...)") from None
            raise self._fail(f"create experiment {experiment_name!r}", exc) from exc
        except TransportError as exc:
            raise self._fail(f"create experiment {experiment_name!r}", exc) from exc
        assert found is not None
        return _described(found)

    # -- runs ---------------------------------------------------------------------------------------

    async def open_run(self, record: RunRecord) -> RunRecord:
        what = f"load or create run {record.run_name!r} of experiment {record.experiment_name!r}"
        try:
            experiment_id = await self._experiment_id(record.experiment_name)
            found = await self._find_run(experiment_id, record.run_name)
            if found is None:
                tags = [{"key": "mlflow.runName", "value": record.run_name},
                        {"key": "mlflow.source.name", "value": "sagerun"}]
                if record.parent:
                    tags.append({"key": PARENT_TAG, "value": record.parent})
                answer = await self._call("POST", "runs/create", {
                    "experiment_id": experiment_id, "run_name": record.run_name,
                    "start_time": _ms(record.start_time or _now()), "tags": tags})
                found = answer["run"]
        except (MlflowError, TransportError) as exc:
            raise self._fail(what, exc) from exc
        data = found.get("data", {})
        kept = {p["key"]: p["value"] for p in data.get("params", ())}
        changed = sorted(k for k, v in record.parameters.items() if k in kept and kept[k] != str(v))
        if changed:
            raise BackendError(f"run {record.run_name!r} of experiment {record.experiment_name!r} has the "
                               f"parameters {', '.join(changed)} with other values already, and MLflow keeps the "
                               "first value of a parameter: log the new values under other names")
        stored = run_record(found, record)
        run_id = stored.trial_component_name
        self._sent_params[run_id] = kept
        self.artifact_uris[run_id] = str(found["info"].get("artifact_uri", ""))
        self._sent_tags[run_id] = {t["key"]: t["value"] for t in data.get("tags", ())}
        return stored

    async def _find_run(self, experiment_id: str, run_name: str) -> dict[str, Any] | None:
        answer = await self._call("POST", "runs/search", {
            "experiment_ids": [experiment_id], "filter": f"attributes.run_name = '{_quoted(run_name)}'",
            "max_results": 1, "order_by": ["attributes.start_time DESC"]})
        runs = answer.get("runs") or []
        return runs[0] if runs else None

    async def run_names(self, run_id: str) -> tuple[str, str]:
        try:
            run = (await self._call("GET", "runs/get", query={"run_id": run_id}))["run"]
            experiment_id = str(run["info"]["experiment_id"])
            experiment = (await self._call("GET", "experiments/get", query={"experiment_id": experiment_id}))
        except (MlflowError, TransportError) as exc:
            raise self._fail(f"read run {run_id!r}", exc) from exc
        return str(experiment["experiment"]["name"]), run_record(run, None).run_name

    async def save_run(self, record: RunRecord) -> None:
        run_id = record.trial_component_name
        try:
            await self._log_params_and_tags(run_id, record)
            status = STATUSES.get(record.status or "InProgress", "RUNNING")
            update: dict[str, Any] = {"run_id": run_id, "status": status}
            if record.end_time is not None and status != "RUNNING":
                update["end_time"] = _ms(record.end_time)
            await self._call("POST", "runs/update", update)
        except (MlflowError, TransportError) as exc:
            raise self._fail(f"save run {record.run_name!r} ({run_id}, status {record.status})", exc) from exc

    async def _log_params_and_tags(self, run_id: str, record: RunRecord) -> None:
        sent_params = self._sent_params.setdefault(run_id, {})
        sent_tags = self._sent_tags.setdefault(run_id, {})
        params = {k: str(v) for k, v in record.parameters.items()}
        params = {k: v for k, v in params.items() if sent_params.get(k) != v}
        tags = {t["Key"]: t["Value"] for t in record.tags}
        tags[STATUS_MESSAGE_TAG] = record.status_message or ""
        if record.parent:
            tags[PARENT_TAG] = record.parent
        for name, artifact in (record.input_artifacts | record.output_artifacts).items():
            tags[ARTIFACT_TAG + name] = artifact.value
        tags = {k: v for k, v in tags.items() if sent_tags.get(k, "") != v}
        items = [("params", k, v) for k, v in params.items()] + [("tags", k, v) for k, v in tags.items()]
        for start in range(0, len(items), PARAMS_TAGS_PER_BATCH):
            chunk = items[start:start + PARAMS_TAGS_PER_BATCH]
            body: dict[str, Any] = {"run_id": run_id, "params": [], "tags": []}
            for kind, key, value in chunk:
                body[kind].append({"key": key, "value": value})
            await self._call("POST", "runs/log-batch", body)
            for kind, key, value in chunk:
                (sent_params if kind == "params" else sent_tags)[key] = value

    async def list_table(self, run_id: str, path: str) -> None:
        """List the table document at ``path`` (relative to the run's artifact URI) in the run's
        ``mlflow.loggedArtifacts`` tag, as ``mlflow.log_table`` does, so that MLflow's UI shows it.

        Raises:
            BackendError: the server did not take the tag.
        """
        sent_tags = self._sent_tags.setdefault(run_id, {})
        try:
            listed = json.loads(sent_tags.get(LOGGED_ARTIFACTS_TAG) or "[]")
        except ValueError:
            listed = None
        if not isinstance(listed, list):
            listed = []  # not MLflow's list: replaced by one
        entry = {"path": path, "type": "table"}
        if entry in listed:
            return
        value = json.dumps([*listed, entry])
        try:
            await self._call("POST", "runs/set-tag", {"run_id": run_id, "key": LOGGED_ARTIFACTS_TAG, "value": value})
        except (MlflowError, TransportError) as exc:
            raise self._fail(f"list table {path!r} in run {run_id}", exc) from exc
        sent_tags[LOGGED_ARTIFACTS_TAG] = value

    async def register_model(self, record: RunRecord, request: ModelRequest, model_data: str) -> ModelVersion:
        """A version of the registered model ``request.group`` (created when missing) from the run;
        the approval status, the image and the run's experiment are tags of the version."""
        run_id = record.trial_component_name
        tags = [{"key": tag["Key"], "value": tag["Value"]} for tag in request.tags]
        extra = {"approval_status": request.approval_status, EXPERIMENT_KEY: record.experiment_name}
        if request.image_uri:
            extra["image_uri"] = request.image_uri
        body: dict[str, Any] = {"name": request.group, "source": model_data, "run_id": run_id,
                                "tags": tags + [{"key": k, "value": v} for k, v in extra.items()]}
        if request.description:
            body["description"] = request.description
        try:
            try:
                await self._call("POST", "registered-models/create", {"name": request.group, "tags": tags})
            except MlflowError as exc:
                if exc.code != "RESOURCE_ALREADY_EXISTS":
                    raise
            version = int((await self._call("POST", "model-versions/create", body))["model_version"]["version"])
        except (MlflowError, TransportError) as exc:
            raise self._fail(f"register model {request.group!r} from run {run_id}", exc) from exc
        return ModelVersion(request.group, version, f"models:/{request.group}/{version}", model_data,
                            request.approval_status, run_id)

    async def put_metrics(self, trial_component_name: str, points: Sequence[Point]) -> Sequence[ItemError]:
        return await log_metrics(self.rest, trial_component_name, points)

    async def add_tags(self, record: RunRecord, tags: dict[str, str]) -> None:
        try:
            for key, value in tags.items():
                await self._call("POST", "runs/set-tag", {"run_id": record.trial_component_name, "key": key,
                                                          "value": value})
        except (MlflowError, TransportError) as exc:
            raise self._fail(f"tag run {record.trial_component_name}", exc) from exc

    async def delivered_steps(self, record: RunRecord) -> dict[str, int]:
        # A run's latest metric is MLflow's value at the highest step: runs/get has each one's.
        try:
            answer = await self._call("GET", "runs/get", query={"run_id": record.trial_component_name})
        except (MlflowError, TransportError) as exc:
            raise self._fail(f"read the steps of run {record.trial_component_name}", exc) from exc
        metrics = (answer.get("run") or {}).get("data", {}).get("metrics") or ()
        return {str(m["key"]): int(m.get("step", 0)) for m in metrics}

    def metrics_target(self) -> MetricsTarget | None:
        return MetricsTarget(self.tracking_uri, self.rest.address.region or "", self.rest.credentials, kind="mlflow")

    async def list_runs(self, experiment_name: str, *, created_after: datetime.datetime | None = None,
                        created_before: datetime.datetime | None = None, sort_by: str = "CreationTime",
                        sort_order: str = "Descending", max_results: int | None = None,
                        where: Callable[[RunRecord], bool] | None = None) -> list[RunRecord]:
        try:
            experiment = await self._experiment(experiment_name)
            if experiment is None:
                return []
            filters = [f"attributes.start_time > {_ms(created_after)}"] if created_after else []
            filters += [f"attributes.start_time < {_ms(created_before)}"] if created_before else []
            order = "attributes.run_name" if sort_by == "Name" else "attributes.start_time"
            order += " DESC" if sort_order == "Descending" else " ASC"
            records: list[RunRecord] = []
            token = None
            while max_results is None or len(records) < max_results:
                body: dict[str, Any] = {"experiment_ids": [str(experiment["experiment_id"])],
                                        "filter": " and ".join(filters), "order_by": [order],
                                        "max_results": min(1000, max_results - len(records)) if max_results else 1000}
                if token:
                    body["page_token"] = token
                answer = await self._call("POST", "runs/search", body)
                records += [r for r in map(lambda run: run_record(run, None, experiment_name), answer.get("runs") or ())
                            if where is None or where(r)]
                token = answer.get("next_page_token")
                if not token:
                    break
        except (MlflowError, TransportError) as exc:
            raise self._fail(f"list the runs of {experiment_name!r}", exc) from exc
        return records[:max_results]


def run_record(run: dict[str, Any], asked: RunRecord | None, experiment_name: str | None = None) -> RunRecord:
    """The ``RunRecord`` of an MLflow run; ``asked``'s names and fields where MLflow has none."""
    info, data = run["info"], run.get("data", {})
    tags = {t["key"]: t["value"] for t in data.get("tags", ())}
    name = info.get("run_name") or tags.get("mlflow.runName") or info["run_id"]
    artifacts = {k[len(ARTIFACT_TAG):]: Artifact(v) for k, v in tags.items() if k.startswith(ARTIFACT_TAG)}
    user_tags = [{"Key": k, "Value": v} for k, v in tags.items()
                 if not k.startswith(("mlflow.", "sagerun."))]
    record = RunRecord(
        experiment_name=asked.experiment_name if asked else experiment_name or "",
        run_name=asked.run_name if asked else name,
        trial_name=asked.trial_name if asked else "",
        trial_component_name=str(info["run_id"]),
        experiment_display_name=asked.experiment_display_name if asked else None,
        run_display_name=asked.run_display_name if asked else name,
        tags=user_tags,
        parameters={p["key"]: _typed(p["value"]) for p in data.get("params", ())},
        output_artifacts=artifacts,
        status=_FROM_MLFLOW.get(info.get("status", ""), "InProgress"),
        status_message=tags.get(STATUS_MESSAGE_TAG) or None,
        start_time=_when(info.get("start_time")),
        end_time=_when(info.get("end_time")),
        parent=tags.get(PARENT_TAG),
    )
    if asked is not None:
        record.parent = asked.parent or record.parent
        record.tags = as_list(as_dict(record.tags) | as_dict(asked.tags))
        record.parameters = {**record.parameters, **asked.parameters}
        record.input_artifacts = {**asked.input_artifacts}
        record.output_artifacts = {**record.output_artifacts, **asked.output_artifacts}
    return record


def _described(experiment: dict[str, Any]) -> dict[str, object]:
    created = _when(experiment.get("creation_time"))
    tags = {t["key"]: t["value"] for t in experiment.get("tags", ())}
    return {"ExperimentName": experiment["name"], "ExperimentArn": experiment.get("experiment_id"),
            "DisplayName": experiment["name"], "Description": tags.get("mlflow.note.content"),
            "CreationTime": created, "LastModifiedTime": _when(experiment.get("last_update_time")) or created}


def _typed(value: str) -> ParameterValue:
    """MLflow keeps params as strings; a number read back is a number again, as SageMaker keeps it."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "\\'")


def _ms(moment: datetime.datetime) -> int:
    return int(moment.timestamp() * 1000)


def _when(ms: Any) -> datetime.datetime | None:
    return None if not ms else datetime.datetime.fromtimestamp(int(ms) / 1000, datetime.timezone.utc)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
