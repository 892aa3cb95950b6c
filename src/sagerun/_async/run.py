"""Run · the async ``Run``: its lifecycle and public calls; metrics go to the ingest layer's intake."""

from __future__ import annotations

import contextlib
import dataclasses
import contextvars
import datetime
import logging
import time
from typing import Any, Mapping


from .._artifacts import console
from .._artifacts.state import RunArtifacts, RunParts
from .._ingest.engine import Engine, start_engine
from .._ingest.intake import MetricIntake
from .._ingest.queue import PointQueue
from .._ingest.stats import IngestStats
from .._model.answers import DeadLetter
from .._model.checks import check_parameter
from .._model.naming import check_name, generate_run_name, run_group_name, trial_component_name
from .._model.records import RunRecord
from .._model.registry import ModelVersion, check_model_request
from .._model.session import Session
from .._model.tags import check_tag, check_tags, merged
from ..backends import backend_name, make_backend
from ..backends.base import Backend
from . import _container, _fork, _jobs, _record, _resume, _signals
from ._resume import RESUME_MODES, Resume
from ._lifecycle import Lifecycle
from ._marks import caller_thread
from ._signals import Terminated

logger = logging.getLogger("sagerun")

current_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar("sagerun_current_run", default=None)


class Run:
    """One run of an experiment: parameters, metrics per step, a status at the end.

    Use it as ``async with Run(...) as run``. Entering loads or creates the experiment, its run group
    (``Default-Run-Group-<experiment>``) and the run's trial component (``<experiment>-<run>``), and
    marks the run InProgress. Leaving flushes every logged point, then saves the end time and the
    status: Completed, Failed (with the exception's message) or Stopped (cancelled, interrupted, or
    SIGTERM, as SageMaker stops a job: see ``_signals``).

    Args:
        experiment_name: the experiment; at most 59 characters; lower-cased, and any character but
            letters, digits and hyphens becomes a hyphen (the name as written is the display name).
        run_name: the run; generated when ``None``; same rules as ``experiment_name``.
        experiment_display_name: shown in SageMaker Studio for a new experiment.
        run_display_name: shown for a new run.
        tags: a dict of keys to values, or the SageMaker SDK's ``[{"Key": ..., "Value": ...}]``, put
            on the run (see ``set_tags`` for the rules).
        session: connection and engine settings; ``Session.from_env()`` when ``None``.
        dead_letter: called with points that could not be delivered for good. The default keeps
            them in the local store's spool (``session.store_path``), from where ``sagerun sync``
            delivers them later.
        artifact_bucket: the S3 bucket of files, charts and tables logged to SageMaker; the
            SageMaker default bucket ``sagemaker-<region>-<account id>`` when ``None``.
        artifact_prefix: the S3 key prefix they go under (``trial-component-artifacts`` when ``None``),
            followed by the trial component's name and the file's name.
        owner: ``False`` for a process that only adds metrics to a run another process owns (another
            rank of a distributed training): it never saves the run's status, parameters, tags or
            artifacts, so that it cannot overwrite the owner's; its own failure becomes the tag
            ``sagerun:failed:<host>/rank<N>``.
        resume: for a run that exists already (a restarted job), what a point logged again at or
            below the highest step the backend holds of its metric becomes: ``"skip"`` (counted in
            ``ingest_stats.skipped_resumed``), or ``"rewind"``, kept (see ``_resume``).

    Raises:
        ValueError, TypeError: a name breaks the rules above (the message names the argument).
    """

    def __init__(
        self,
        experiment_name: str,
        run_name: str | None = None,
        experiment_display_name: str | None = None,
        run_display_name: str | None = None,
        tags: Mapping[str, str] | list[dict[str, str]] | None = None,
        *,
        session: Session | None = None,
        dead_letter: DeadLetter | None = None,
        artifact_bucket: str | None = None,
        artifact_prefix: str | None = None,
        owner: bool = True,
        resume: Resume = "skip",
    ) -> None:
        if resume not in RESUME_MODES:
            raise ValueError(f"resume must be 'skip' or 'rewind'; got {resume!r}")
        experiment = check_name("experiment_name", experiment_name)
        run = generate_run_name() if run_name is None else check_name("run_name", run_name)
        self._record = RunRecord(
            experiment_name=experiment,
            run_name=run,
            trial_name=run_group_name(experiment),
            trial_component_name=trial_component_name(experiment, run),
            experiment_display_name=experiment_display_name or _display(experiment_name, experiment),
            run_display_name=run_display_name or (None if run_name is None else _display(run_name, run)),
            tags=check_tags(tags),
        )
        self.session: Session = session if session is not None else Session.from_env()
        self._dead_letter = dead_letter
        self._queue = PointQueue(self.session.queue_capacity, self.session.full_policy)
        self._intake = MetricIntake(self._queue)
        self._life = Lifecycle(repr(self), self._record.run_name, self._record.experiment_name)
        self._backend: Backend | None = None
        self._closing_since = 0.0  # time.monotonic() when the close began
        self._engine: Engine | None = None
        self._stack = contextlib.AsyncExitStack()
        self._context_token: contextvars.Token[Run | None] | None = None
        self._terminated = False  # SIGTERM cancelled the task that opened the run
        self._artifacts = RunArtifacts(artifact_bucket, artifact_prefix)
        self._owner = bool(owner)
        self._told_not_owner = False
        self._resume = resume

    # -- identity ---------------------------------------------------------------------------------

    @property
    def experiment_name(self) -> str:
        return self._record.experiment_name

    @property
    def run_name(self) -> str:
        return self._record.run_name

    @property
    def run_group_name(self) -> str:
        return self._record.trial_name

    @property
    def trial_component_name(self) -> str:
        return self._record.trial_component_name

    @property
    def experiment_config(self) -> dict[str, str]:
        """The ``ExperimentConfig`` of CreateTrainingJob, CreateProcessingJob and CreateTransformJob
        (and the SageMaker SDK's ``experiment_config=``) for a job whose ``load_run()`` finds this run."""
        return {"ExperimentName": self.experiment_name, "TrialName": self.run_group_name,
                "RunName": self.trial_component_name}

    def __repr__(self) -> str:
        return f"Run(experiment_name={self.experiment_name!r}, run_name={self.run_name!r})"

    def __reduce__(self) -> Any:
        raise TypeError(
            "a Run cannot be pickled: it owns a queue and connections. Pass experiment_name and run_name "
            "to the other process and open the run there with load_run(run_name=..., experiment_name=...)"
        )

    # -- lifecycle --------------------------------------------------------------------------------

    def _stopped_by_sigterm(self) -> None:
        self._terminated = True

    def _allow_nested_entry(self) -> None:
        """Called by load_run() when it hands out this open run: one more ``async with`` on it nests."""
        self._life.lend()

    def _forked(self) -> None:
        """In a forked child: the run stays the parent's, and refuses points here."""
        self._life.fork()
        self._intake.refuse(self._life.forked_error)

    async def __aenter__(self) -> Run:
        if self._life.enter():
            return self
        stack = self._stack
        _signals.arm(stack, self._stopped_by_sigterm)
        _fork.opened(self)
        stack.callback(_fork.closed, self)
        try:
            backend = await stack.enter_async_context(make_backend(self.session))
            record = await _record.open_record(backend, self._record, self._owner)
            self._record, self._backend = record, backend
            job_arn = self.tags.get(_jobs.JOB_TAG)
            if job_arn and self._owner:  # a job's run (load_run): its job's own trial component, in lineage
                await backend.link_job(record, job_arn)
            if self._owner:
                stack.push_async_callback(self._save_final)
            else:
                stack.push_async_callback(lambda: _record.note_failure(backend, self._record))
            # Both run before the final save, so that the record it saves holds the tables and the log.
            parts = RunParts(self._record, backend, self.session, stack)
            if self.session.capture_console:
                console.arm(stack, lambda path: self._artifacts.log_file(parts, path, console.ARTIFACT, "text/plain",
                                                                         True), self._artifacts_deadline)
            stack.push_async_callback(lambda: self._artifacts.close_rows(parts, self._artifacts_deadline()))
            _container.arm(stack, lambda: RunParts(self._record, backend, self.session, stack), self._artifacts)
            # The metrics get close_timeout but for its end, which the final save keeps.
            metrics_session = dataclasses.replace(
                self.session, close_timeout=self.session.close_timeout - _record.final_save_reserve(self.session))
            self._engine = await start_engine(stack, self._queue, backend, record.trial_component_name,
                                              metrics_session, self._dead_letter)
            await _resume.resume(backend, record, self._queue, self._intake, self._resume, self._owner)
        except BaseException:
            self._life.leave()
            self._intake.refuse(self._life.closed_error)
            await stack.aclose()
            raise
        self._life.opened()
        self._context_token = current_run.set(self)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        if self._life.leave():
            return
        self._intake.refuse(self._life.closed_error)
        self._closing_since = time.monotonic()
        _record.end(self._record, exc, self._terminated)
        if self._context_token is not None:
            with contextlib.suppress(ValueError):  # exited in another context than entered
                current_run.reset(self._context_token)
        await self._stack.aclose()
        if self._terminated:
            raise Terminated() from exc  # the process ends with 143, as SIGTERM would have ended it

    def _artifacts_deadline(self) -> float:
        """When what is stored at close must be stored by: the final save keeps the end of close_timeout."""
        return self._closing_since + self.session.close_timeout - _record.final_save_reserve(self.session)

    async def _save_final(self) -> None:
        assert self._backend is not None
        await _record.save_final(self._backend, _record.snapshot(self._record), self.session, self._closing_since)

    async def flush(self) -> None:
        """Store the tables ``log_row`` grew, wait until every point logged so far is delivered or
        has failed for good, then save the parameters, tags and artifacts.

        Raises:
            RunNotOpenError: the run is not open (``RunClosedError``: it was closed).
            BackendError: the parameters or a table could not be saved.
        """
        await self._artifacts.write_rows(self._artifact_parts("flush"))
        assert self._engine is not None and self._backend is not None
        await self._engine.flush()
        if self._owner:
            await self._backend.save_run(_record.snapshot(self._record))

    # -- parameters -------------------------------------------------------------------------------

    @property
    def parameters(self) -> dict[str, str | int | float]:
        """The parameters logged so far (with those the run had when loaded)."""
        return dict(self._record.parameters)

    def log_parameter(self, name: str, value: str | int | float) -> None:
        """Record a parameter; a later value overwrites, but for the MLflow backend, which keeps the
        first value of a parameter for good. Saved on enter, on ``flush()`` and on exit.

        NaN and infinite values are skipped with a warning, as SageMaker cannot store them.

        Raises:
            TypeError, ValueError: ``name`` is not a non-empty str, or ``value`` not a str, int or
                float; or, for the MLflow backend, the parameter has another value already.
        """
        checked = check_parameter(name, value)
        self._say_not_saved()
        if isinstance(checked, float) and checked - checked != 0.0:
            logger.warning("sagerun: parameter %r was not logged: its value %r cannot be stored", name, value)
            return
        before = self._record.parameters.get(name)
        if before is not None and str(before) != str(checked) and self._parameters_are_final():
            raise ValueError(f"parameter {name!r} has the value {before!r} already, and MLflow keeps the first "
                             f"value of a parameter: log {checked!r} under another name, or as a metric or a tag")
        self._record.parameters[name] = checked

    def _say_not_saved(self) -> None:
        """Once: a process that does not own the run keeps its parameters, tags and files to itself."""
        if not self._owner and not self._told_not_owner:
            self._told_not_owner = True
            logger.warning("sagerun: %r is open with owner=False (not rank 0 of the lead host): its parameters, tags "
                           "and artifacts are saved by the process that owns the run, not by this one", self)

    def _parameters_are_final(self) -> bool:
        if self._backend is not None:
            return self._backend.immutable_parameters
        return backend_name(self.session) == "mlflow"

    def log_parameters(self, parameters: Mapping[str, str | int | float]) -> None:
        """``log_parameter`` for each item; all are checked before any is recorded.

        Raises:
            TypeError, ValueError: as ``log_parameter``, naming the offending parameter.
        """
        if not isinstance(parameters, Mapping):
            raise TypeError(f"parameters must be a mapping of names to values; got {type(parameters).__name__}")
        for name, value in parameters.items():
            check_parameter(name, value)
        for name, value in parameters.items():
            self.log_parameter(name, value)

    # -- tags and child runs ----------------------------------------------------------------------

    @property
    def parent(self) -> str | None:
        """The parent run's trial component name (its run id on MLflow) for a child run, else ``None``."""
        return self._record.parent

    @property
    def tags(self) -> dict[str, str]:
        """The run's tags: those given, set, and those it had when loaded."""
        return {tag["Key"]: tag["Value"] for tag in self._record.tags}

    def set_tag(self, key: str, value: str | int | float | bool) -> None:
        """Set a tag on the run; a later value of the same key replaces it. No I/O happens here: it
        is saved on ``flush()`` and on exit (on SageMaker with AddTags, on MLflow as a run tag).

        Raises:
            TypeError, ValueError: the key is not 1 to 128 characters or starts with ``aws:``, the
                value is over 256, either holds characters other than letters, digits, spaces and
                ``_ . : / = + - @``, or the run would hold more than 49 tags (SageMaker's rules,
                on every backend).
        """
        key, text = check_tag(key, value)
        self._say_not_saved()
        self._record.tags = merged(self._record.tags, [{"Key": key, "Value": text}])

    def set_tags(self, tags: Mapping[str, str | int | float | bool]) -> None:
        """``set_tag`` for each item; all are checked before any is set.

        Raises:
            TypeError, ValueError: as ``set_tag``, naming the offending tag.
        """
        self._record.tags = merged(self._record.tags, check_tags(tags))
        self._say_not_saved()

    def child_run(self, run_name: str | None = None, *, run_display_name: str | None = None,
                  tags: Mapping[str, str] | list[dict[str, str]] | None = None) -> Run:
        """A run of the same experiment and session whose parent is this run; enter it with
        ``async with``. Its name is ``<this run's name>-<run_name>`` (generated when ``None``), so
        that each parent's ``fold-1`` is its own and opening the same parent and child again
        resumes both; ``run_name`` is its display name. The parent is recorded as the tag
        ``sagerun:parent-run`` on SageMaker, ``mlflow.parentRunId`` on MLflow, and in the local
        store's runs. A child's status is its own: one that fails is Failed, and its parent is
        Completed if the exception is caught in the parent's block.

        Raises:
            ValueError, TypeError: the child's name would break the naming rules (at most 59
                characters), or bad tags.
        """
        suffix = generate_run_name() if run_name is None else check_name("run_name", run_name)
        child = Run(self.experiment_name, check_name("run_name", f"{self.run_name}-{suffix}"),
                    run_display_name=run_display_name or run_name, tags=tags, session=self.session,
                    dead_letter=self._dead_letter, artifact_bucket=self._artifacts.bucket,
                    artifact_prefix=self._artifacts.prefix)
        child._record.parent = self.trial_component_name
        return child

    # -- metrics ----------------------------------------------------------------------------------

    @property
    def ingest_stats(self) -> IngestStats:
        """Points enqueued, delivered, failed, dropped, rejected; queue depth and lag, right now."""
        if self._engine is None:  # not entered yet: points wait in the queue
            queue = self._queue
            return IngestStats(enqueued=len(queue), delivered=0, failed=0, dropped=queue.dropped,
                               rejected=queue.rejected, retried=0, resent_unanswered=0, queued=len(queue),
                               in_flight=0, lag=0.0, in_flight_limit=0)
        return dataclasses.replace(self._engine.stats(), skipped_resumed=self._intake.skipped)

    async def metric_history(self, name: str, *, as_frame: bool | None = None) -> Any:
        """Every point of metric ``name`` of this run, read back from its backend, in the order
        logged: a pandas DataFrame of ``step`` (-1 for a point logged without one), ``timestamp``
        (UTC) and ``value`` where pandas is installed, else (``as_frame=False``) a ``History`` of
        numpy arrays (steps, epoch seconds, values). On SageMaker, the last value at each step.

        Raises:
            TypeError: ``name`` is not a str.
            LookupError: the backend holds no such run (not opened yet, or another backend).
            KeyError: the run has no metric ``name``.
            RuntimeError: ``as_frame=True`` without pandas.
            BackendError: the backend could not be read.
        """
        from .reads import _history_of

        return await _history_of(self, name, as_frame)

    @caller_thread(via="_intake")
    async def log_metric(self, name: str, value: float, *, step: int | None = None,
                         timestamp: datetime.datetime | float | None = None) -> None:
        """Queue one metric point; no I/O happens here.

        The timestamp is taken now, at the call, unless given (a datetime, naive meaning local time,
        or epoch seconds within the last 14 days and up to 2 hours ahead). NaN and infinities are
        not sent: they are counted in ``ingest_stats.rejected`` and warned about once per name.
        On a full queue the session's ``full_policy`` applies; only ``"block"`` waits.

        Raises:
            TypeError, ValueError: a bad ``name``, ``value``, ``step`` or ``timestamp`` (named).
            RunClosedError: the run is closed (ForkedRunError: it was opened in a parent process).
            QueueFullError: the queue is full and the policy is ``"raise"``.
        """
        point = self._intake.point(name, value, step, timestamp)
        if point is not None and not self._queue.offer(point):
            await self._queue.put_async(point)

    @caller_thread(via="_intake")
    async def log_metrics(self, metrics: Mapping[str, Any], *, step: Any = None, timestamp: Any = None) -> None:
        """Queue many points at once from numbers or numpy arrays, at a small cost per point.

        ``metrics`` maps names to a number or a 1-d array. ``step`` is ``None``, an int (every
        value at that step) or a 1-d array of ints as long as the values (one metric over a range
        of steps). ``timestamp`` is ``None`` (now), a datetime or epoch seconds, or an array of epoch
        seconds as long as the values. All metrics are checked before any is queued.

        Raises:
            TypeError, ValueError: a bad name, values, steps or timestamps (named), or lengths that differ.
            RunClosedError: the run is closed (ForkedRunError: it was opened in a parent process).
            QueueFullError: the queue is full and the policy is ``"raise"``.
        """
        await self._queue.put_items_async(self._intake.items(metrics, step, timestamp))

    @caller_thread(via="_intake")
    async def log_list(self, name: str, values: Any) -> None:
        """Queue a whole vector (a list or a 1-d numpy array) as metric ``name`` at steps 0 to n-1, in
        one call on the path ``log_metrics`` takes: a per-epoch curve, a learning-rate schedule.

        Raises:
            TypeError, ValueError: a bad name, values that are not a non-empty 1-d list or array of
                numbers, or more than 2**31 of them.
            RunClosedError: the run is closed (ForkedRunError: it was opened in a parent process).
            QueueFullError: the queue is full and the policy is ``"raise"``.
        """
        await self._queue.put_items_async(self._intake.list_items(name, values))

    # -- artifacts --------------------------------------------------------------------------------
    # Files, charts and tables: stored in S3 (SageMaker) or under the local store, and recorded as the
    # run's input or output artifacts, which are saved with the run on flush() and on exit. Each
    # upload is awaited I/O on the event loop (blocking work in worker threads): logged metrics keep
    # flowing while it runs.

    def log_row(self, name: str, **columns: Any) -> None:
        """Append a row to table ``name``, which grows during the run: ``run.log_row("val", epoch=3,
        loss=0.21)``. No I/O happens here: the table is stored as ``log_table`` stores tables (an
        output artifact named ``name``, previewed by ``sagerun table``) on ``flush()`` and at close.
        Columns may differ between rows; a missing cell is ``null``.

        Raises:
            TypeError, ValueError: ``name`` is not a str, no column is given, or a cell is not a str,
                number, bool, date or ``None``.
            RunNotOpenError: the run is not open.
        """
        self._life.require_open("log_row")
        self._artifacts.rows.add(name, columns)

    def _artifact_parts(self, call: str) -> RunParts:
        self._life.require_open(call)
        self._say_not_saved()
        assert self._backend is not None
        return RunParts(self._record, self._backend, self.session, self._stack)

    def log_artifact(self, name: str, value: str, media_type: str | None = None, is_output: bool = True) -> None:
        """Record ``value`` (an S3 URI, a path, any text) as an output artifact of the run, or an input
        with ``is_output=False``; a later value of the same name replaces it. No I/O happens here: it
        is saved with the run on ``flush()`` and on exit.

        Raises:
            TypeError, ValueError: a bad name (1 to 128 characters), value (at most 2048) or media type
                (``type/subtype``), or the run already has 30 artifacts of that direction.
            RunClosedError: the run is closed.
        """
        refusal = self._life.refusal()
        if refusal is not None:
            raise refusal
        self._artifacts.log_artifact(self._record, name, value, media_type, is_output)

    async def log_file(self, file_path: str, name: str | None = None, media_type: str | None = None,
                       is_output: bool = True) -> str:
        """Upload a file and record it as an output artifact (an input with ``is_output=False``);
        return the URI recorded. A folder (a checkpoint, a saved model) is stored as
        ``<folder name>.tar.gz``, its content at the archive's top, made in a worker thread.

        To SageMaker it goes to ``s3://<bucket>/<prefix>/<trial component>/<file name>``; with the
        local store it is copied to ``<store>/artifacts/<trial component>/`` and recorded as a
        ``file://`` URI. ``name`` defaults to the file's name, ``media_type`` to the type its
        extension suggests. Large files are uploaded in parts, a few at a time.

        Raises:
            ValueError: the file does not exist, is neither a regular file nor a folder, or cannot be read, a bad name
                or media type, or the run already has 30 artifacts of that direction; all before
                anything is uploaded.
            RunNotOpenError: the run is not open.
            BackendError: the upload failed (the message names the bucket and key).
        """
        return await self._artifacts.log_file(self._artifact_parts("log_file"), file_path, name, media_type,
                                              is_output)

    async def log_confusion_matrix(self, y_true: Any, y_pred: Any, title: str | None = None,
                                   is_output: bool = True) -> str:
        """Compute the confusion matrix of ``y_pred`` against ``y_true`` with scikit-learn, store it as
        the ``ConfusionMatrix`` JSON document SageMaker Studio renders, and record it as an artifact
        named ``title`` (generated when ``None``); return its URI. In SageMaker it is also linked to
        the run as a lineage artifact when the API allows.

        Raises:
            ValueError: ``y_true`` and ``y_pred`` differ in length or are empty, or a bad title, or no
                artifact slot is left.
            RunNotOpenError: the run is not open.
            BackendError: the document could not be stored.
        """
        from .._artifacts import charts

        return await self._artifacts.log_chart(self._artifact_parts("log_confusion_matrix"),
                                               charts.CONFUSION_MATRIX, title, is_output,
                                               lambda: charts.confusion_matrix_document(y_true, y_pred, title))

    async def log_roc_curve(self, y_true: Any, y_score: Any, title: str | None = None, is_output: bool = True) -> str:
        """Compute the ROC curve (and its area) of binary ``y_true`` against ``y_score`` with
        scikit-learn, and store and record it as a ``ROCCurve`` document like
        ``log_confusion_matrix``; return its URI.

        Raises:
            ValueError: ``y_true`` and ``y_score`` differ in length or are empty, or scikit-learn
                refuses them (labels that are not binary), or a bad title, or no slot is left.
            RunNotOpenError: the run is not open.
            BackendError: the document could not be stored.
        """
        from .._artifacts import charts

        return await self._artifacts.log_chart(self._artifact_parts("log_roc_curve"), charts.ROC_CURVE, title,
                                               is_output, lambda: charts.roc_curve_document(y_true, y_score, title))

    async def log_precision_recall(self, y_true: Any, predicted_probabilities: Any, positive_label: Any = None,
                                   title: str | None = None, is_output: bool = True,
                                   no_skill: float | None = None) -> str:
        """Compute the precision-recall curve and average precision of ``y_true`` against the
        probabilities of the positive class (``positive_label`` when labels are not 0/1) with
        scikit-learn, and store and record it as a ``PrecisionRecallCurve`` document like
        ``log_confusion_matrix``; ``no_skill`` is a reference precision drawn with it. Return its URI.

        Raises:
            ValueError: ``y_true`` and ``predicted_probabilities`` differ in length or are empty, or
                scikit-learn refuses them, or a bad title, or no slot is left.
            RunNotOpenError: the run is not open.
            BackendError: the document could not be stored.
        """
        from .._artifacts import charts

        return await self._artifacts.log_chart(
            self._artifact_parts("log_precision_recall"), charts.PRECISION_RECALL_CURVE, title, is_output,
            lambda: charts.precision_recall_document(y_true, predicted_probabilities, positive_label, title, no_skill))

    async def log_image(self, name: str, path: str | None = None, figure: Any = None) -> str:
        """Store an image as the output artifact ``name`` with its media type, and return its URI:
        a PNG or JPEG file (``path``), or a matplotlib figure (``figure``), drawn to PNG in memory
        off the event loop. Stored where ``log_file`` stores files.

        Raises:
            ValueError: both or neither of ``path`` and ``figure``, a file that is not a PNG or JPEG
                (by its first bytes), a missing file, a bad name, or no slot left.
            TypeError: ``figure`` is not a matplotlib figure.
            RuntimeError: a figure is given without matplotlib installed (``sagerun[charts]``).
            RunNotOpenError: the run is not open.
            BackendError: the image could not be stored.
        """
        return await self._artifacts.log_image(self._artifact_parts("log_image"), name, path, figure)

    async def log_code(self, path: str = ".", *, max_bytes: int = 50 * 2**20) -> str:
        """Archive the source folder ``path`` as ``code.tar.gz`` and store it as the input artifact
        ``code``; return its URI. What ``.gitignore`` files and a top-level ``.sagerunignore``
        ignore is left out, and so are ``.git`` and files that look like secrets (``.env``,
        ``*.pem``, ``id_rsa*``, ``credentials``, ``*.key``), whatever the ignore files say. Inside a
        SageMaker training job whose source the SDK uploaded (``sagemaker_submit_directory``), that
        archive's S3 URI is recorded instead, and nothing is uploaded.

        Raises:
            TypeError: ``path`` is not a str or path, or ``max_bytes`` not a positive int.
            ValueError: ``path`` is not a folder, or its files add up to more than ``max_bytes``
                (``CodeTooLargeError``, naming the largest files).
            RunNotOpenError: the run is not open.
            BackendError: the archive could not be stored.
        """
        return await self._artifacts.log_code(self._artifact_parts("log_code"), path, max_bytes)

    async def register_model(self, model_package_group: str, model_data: Any, *, description: str | None = None,
                             image_uri: str | None = None, approval_status: str = "PendingManualApproval",
                             tags: Any = None) -> ModelVersion:
        """Register a new version of the model ``model_package_group`` from this run, and return it.

        ``model_data`` is an ``s3://`` URI, or a local file or folder, stored with the run's files
        (a folder as ``<group>.tar.gz``); the run records it as the output artifact
        ``model:<group>``. On SageMaker the model package group is created when missing, and the
        version (a model package) names the run in its customer metadata and, where the API
        allows, in lineage; with ``image_uri`` it gets an inference specification and can be
        deployed. On MLflow it is a version of the registered model of that name, with the run's
        id; in the local store, a row that ``sagerun models`` lists.

        Raises:
            TypeError, ValueError: a group name SageMaker would refuse (1 to 63 letters, digits
                and hyphens), ``model_data`` neither an ``s3://`` URI nor an existing path, an
                ``approval_status`` other than ``PendingManualApproval``, ``Approved`` or
                ``Rejected``, a bad tag, or no output artifact slot left; all before any upload.
            RunNotOpenError: the run is not open.
            BackendError: the files could not be stored, or the registry refused the version.
        """
        from .._artifacts.registry import register_model

        request = check_model_request(model_package_group, model_data, description, image_uri, approval_status, tags)
        return await register_model(self._artifacts, self._artifact_parts("register_model"), request)

    async def log_table(self, name: str, data: Any) -> str:
        """Store ``data`` (a pandas DataFrame, a dict of equal-length columns, or a list of row dicts)
        as a JSON table document and record it as an output artifact named ``name``; return its URI.
        Tables are stored whole; ``sagerun table RUN NAME`` previews the first rows without reading
        the rest.

        Raises:
            TypeError, ValueError: ``data`` is none of those, its columns differ in length, a bad name,
                or no slot is left.
            RunNotOpenError: the run is not open.
            BackendError: the document could not be stored.
        """
        return await self._artifacts.log_table(self._artifact_parts("log_table"), name, data)


def _display(written: str, name: str) -> str | None:
    """The name as the user wrote it, when SageMaker's rules changed it."""
    return written if written != name else None
