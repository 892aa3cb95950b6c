"""Integrations · the one core under every framework adapter: which run, which ranks log, what is logged,
and a callback that never gets in the training's way.

Which run, in this order:

1. ``run=``: that run (a ``sagerun.sync.Run``, or an async one, for metrics and parameters); it is
   never closed here.
2. ``experiment_name=`` / ``run_name=``, else ``SAGERUN_EXPERIMENT_NAME`` / ``SAGERUN_RUN_NAME``:
   that run, opened (created or resumed) on first use and closed at the training's end.
3. ``load_run()``: the run of an enclosing ``with Run(...)`` block (left open), or inside a SageMaker
   job the run its ``ExperimentConfig`` names (closed at the end; a job whose configuration names
   no run gets a run named after the job, so that a restarted job resumes it).
4. A new run of the experiment named after the framework, with a generated name.

A run this core opened is closed when the framework's training ends, Completed, or Failed with the
error where the framework says so; when it says nothing (the training raised), the run ends Failed
at interpreter exit, with the exception that ended the program. Logging again afterwards, as
``evaluate()`` after ``train()`` does, reopens the same run.

Only the process of global rank 0 logs, unless ``per_rank=True``: then every rank logs its metrics
under ``rank<N>/``, and parameters, tags, checkpoints and the model still come from rank 0 alone.
Every error inside a callback is counted and logged once per kind, and the training goes on.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import tempfile
import time
from typing import Any, Callable, Literal, Mapping, TypedDict, TypeVar

from .._async.run import Run as AsyncRun, current_run
from .._model.checks import check_metric_name
from .._model.environment import detect_job, in_a_job, job_hosts, names_from_env, process_rank
from .._model.naming import MAX_NAME_LENGTH, check_name
from .._model.registry import check_group
from .._model.session import Session
from .._model.tags import as_dict, check_tags
from .._sync import _portal, _twins
from .._sync.experiment import load_run
from .._sync.run import Run
from . import _values
from ._names import exported, shared_name

logger = logging.getLogger("sagerun")
T = TypeVar("T")

Checkpoints = Literal["last", "all"]
INTEGRATION_TAG = "sagerun:integration"


class RunOptions(TypedDict, total=False):
    """What every integration takes, as keywords.

    - ``run``: the run to log to, never closed here (a ``sagerun.sync.Run``; an async ``sagerun.Run``
      takes metrics and parameters only).
    - ``experiment_name``, ``run_name``: the run to open (created, or resumed if it exists);
      ``SAGERUN_EXPERIMENT_NAME`` and ``SAGERUN_RUN_NAME`` when ``None``.
    - ``session``: connection and engine settings; ``Session.from_env()`` when ``None``.
    - ``tags``: tags put on a run opened here (a dict, or the SDK's ``[{"Key", "Value"}]``).
    - ``per_rank``: every rank logs its metrics, under ``rank<N>/``; by default only global rank 0.
    - ``log_checkpoints``: ``"last"`` stores the last checkpoint when the training ends, ``"all"``
      each one as it is saved, in the background (a folder as a ``.tar.gz``); for the frameworks
      that say when they save one (Trainer and Lightning).
    - ``register_model``: a model package group the final model is registered in, when the
      training ends (``run.register_model``).
    """

    run: Any
    experiment_name: str | None
    run_name: str | None
    session: Session | None
    tags: Any
    per_rank: bool
    log_checkpoints: Checkpoints | None
    register_model: str | None


@dataclasses.dataclass
class IntegrationStats:
    """What a framework callback did with what the framework handed it."""

    points: int = 0
    """Metric values handed to the run (those it refuses, NaN say, it counts in ``ingest_stats``)."""
    skipped: int = 0
    """Values left out: not one number (a string, a dict, a list), or under a name a run refuses."""
    cut: int = 0
    """Parameters cut to SageMaker's limits or left out, or that kept their first value (MLflow)."""
    errors: int = 0
    """Errors inside the callback; each kind is logged once, and the training went on."""


class Tracked:
    """What every integration's callback shows of its core: the run open now, and its counts."""

    tracker: Tracker

    @property
    def run(self) -> Run | None:
        """The run open now: ``None`` before the training, after it, and on a rank that does not log."""
        return self.tracker.active_run

    @property
    def stats(self) -> IntegrationStats:
        """Values logged, skipped and cut, and errors contained, so far."""
        return self.tracker.stats


class Tracker:
    """The run a framework's callback logs to, and the rules it logs by (see the module's docstring);
    its keywords are ``RunOptions``.

    Raises:
        TypeError, ValueError: an argument breaks its rule (the message names it).
    """

    def __init__(self, framework: str, *, run: Any = None, experiment_name: str | None = None,
                 run_name: str | None = None, session: Session | None = None, tags: Any = None,
                 per_rank: bool = False, log_checkpoints: Checkpoints | None = None,
                 register_model: str | None = None, checkpoints: bool = True) -> None:
        if run is not None and not isinstance(run, (Run, AsyncRun)):
            raise TypeError(f"run must be a sagerun.sync.Run or a sagerun.Run; got {type(run).__name__}")
        if log_checkpoints not in (None, "last", "all"):
            raise ValueError(f"log_checkpoints must be 'last', 'all' or None; got {log_checkpoints!r}")
        if register_model is not None:
            check_group(register_model, "register_model")
        if isinstance(run, AsyncRun) and (log_checkpoints or register_model):
            raise ValueError("log_checkpoints and register_model store files from the sync facade's engine: "
                             "give a sagerun.sync.Run as run=, or leave run= out")
        if session is not None and not isinstance(session, Session):
            raise TypeError(f"session must be a sagerun.Session; got {type(session).__name__}")
        if log_checkpoints is not None and not checkpoints:
            raise ValueError(f"log_checkpoints: the {framework} integration is not told when a checkpoint is saved; "
                             "store one with run.log_file(path) where you save it")
        env_experiment, env_run = names_from_env()
        if env_run is not None and env_run in exported:  # named by another core of this process
            env_run = None
        experiment, name = experiment_name or env_experiment, run_name or env_run
        for argument, value in (("experiment_name", experiment), ("run_name", name)):
            if value is not None:
                check_name(argument, value)
        self.framework = framework
        self.stats = IntegrationStats()
        self.rank = process_rank()
        self._hosts = job_hosts()
        self.per_rank = bool(per_rank)
        self.log_checkpoints = log_checkpoints
        self.register_model = register_model
        self._tags = {INTEGRATION_TAG: framework, **as_dict(check_tags(tags))}
        self._session = session
        self._portal_run = not isinstance(run, AsyncRun)
        self._given: Run | None = _twins.to_sync(run) if run is not None else None
        if self._given is not None:
            experiment, name = self._given.experiment_name, self._given.run_name
        elif name is None and self.per_rank and not in_a_job():
            name = shared_name(framework)
        self._names = (experiment, name)
        self._run: Run | None = self._given
        self._owned = False
        self._broken = False
        self._pending: list[concurrent.futures.Future[Any]] = []
        self._last_checkpoint: str | None = None
        self._reported: set[tuple[str, type]] = set()
        self._valid_names: set[str] = set()

    # -- pickling, for spawn-based distributed training -------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # A run and its futures belong to this process: another reopens the run by its names.
        state.update(_run=None, _given=None, _owned=False, _pending=[], _portal_run=True)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.rank = process_rank()
        self._hosts = job_hosts()

    # -- which processes log ----------------------------------------------------------------------

    def set_rank(self, rank: int) -> None:
        """The global rank as the framework knows it (it wins over the launcher's variables)."""
        self.rank = int(rank)

    @property
    def logs_metrics(self) -> bool:
        """Whether this process logs metrics: rank 0, or every rank with ``per_rank``."""
        return self.per_rank or self.rank == 0

    @property
    def lead(self) -> bool:
        """Whether this process logs parameters, tags, checkpoints and the model: rank 0 (of the
        lead host, in a SageMaker job of several)."""
        return self.rank == 0 and self._hosts.lead

    # -- the run ----------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str | None, str | None]:
        """The experiment and run this core opens (``None`` where ``load_run()`` or a generated
        name will decide, at the first open)."""
        return self._names

    @property
    def active_run(self) -> Run | None:
        """The run open now, if any, without opening one."""
        return self._run

    def run(self) -> Run | None:
        """The run to log to, opened on first use; ``None`` in a process that does not log, or after
        opening it failed (said once in the log)."""
        if self._run is None and self.logs_metrics and not self._broken:
            try:
                self._run = self._open()
            except Exception:
                self._broken = True
                raise
        return self._run

    def _open(self) -> Run:
        experiment, name = self._names
        if name is not None or experiment is not None:
            run = Run(experiment or self.framework, name, session=self._session, owner=self.lead)
        else:
            run = self._load()
        # An enclosing ``with Run(...)`` block's run is lent: entered here, it nests and stays the user's.
        lent = run._async is current_run.get()
        run.__enter__()
        self._owned = True
        if not lent:
            self._names = (run.experiment_name, run.run_name)  # reopened later, it is the same run
            if self.lead:
                run.set_tags(self._tags)
        return run

    def _load(self) -> Run:
        try:
            # Another rank of the job adds its metrics, and rank 0 alone saves the run's record.
            return load_run(session=self._session, owner=self.lead)
        except RuntimeError as exc:
            job = detect_job()
            name = job.name[:MAX_NAME_LENGTH] if job is not None else None
            if job is not None:
                logger.info("sagerun: %s; logging to the run %r of experiment %r instead", exc, name, self.framework)
            return Run(self.framework, name, session=self._session, owner=self.lead)

    def end(self, exc: BaseException | None = None, save_model: Callable[[str], None] | None = None) -> None:
        """The training ended (with ``exc`` if it raised): store the last checkpoint and the model
        (rank 0, unless it failed), wait for the files still being stored, then close the run if it
        was opened here. A later log reopens the same run."""
        run = self._run
        if run is None:
            return
        try:
            if exc is None and self.lead:
                if self.log_checkpoints == "last" and self._last_checkpoint is not None:
                    self._store(self._last_checkpoint)
                if self.register_model is not None and save_model is not None:
                    self.safely(self._register, run, save_model)
            self._wait_for_files(run)
        finally:
            self._last_checkpoint = None
            if self._owned:
                self._run, self._owned = None, False
                run.__exit__(type(exc) if exc is not None else None, exc, exc.__traceback__ if exc else None)

    # -- what is logged ---------------------------------------------------------------------------

    def metrics(self, values: Mapping[str, Any], step: int) -> None:
        """Queue each value of ``values`` that is one number, at ``step``; count the others."""
        run = self.run()
        if run is None:
            return
        prefix = ""
        if self.per_rank:
            hosts = self._hosts
            prefix = f"{hosts.current}/rank{self.rank}/" if hosts.several else f"rank{self.rank}/"
        points: dict[str, float] = {}
        for key, value in values.items():
            number = _values.number(value)
            name = prefix + key if isinstance(key, str) else None
            if number is None or name is None or not self._valid(name):
                self.stats.skipped += 1
                continue
            points[name] = number
        if points:
            run.log_metrics(points, step=step)
            self.stats.points += len(points)

    def _valid(self, name: str) -> bool:
        if name in self._valid_names:
            return True
        try:
            check_metric_name(name)
        except (TypeError, ValueError):
            return False
        self._valid_names.add(name)
        return True

    def parameters(self, values: Mapping[str, Any], prefix: str = "") -> None:
        """Log ``values`` as parameters, flattened under ``prefix`` and reduced (rank 0 only)."""
        if not self.lead:
            return
        run = self.run()
        if run is None:
            return
        reduced, cut = _values.parameters(values, prefix)
        self.stats.cut += cut
        for name, value in reduced.items():
            try:
                run.log_parameter(name, value)
            except ValueError:  # MLflow keeps a parameter's first value
                self.stats.cut += 1

    # -- files ------------------------------------------------------------------------------------

    def checkpoint(self, path: str) -> None:
        """A checkpoint (a file or a folder) was saved at ``path``: stored now in the background
        with ``log_checkpoints="all"``, at the end with ``"last"``."""
        if self.log_checkpoints is None or not self.lead or self.run() is None:
            return
        self._last_checkpoint = path
        if self.log_checkpoints == "all":
            self._store(path)

    def table(self, name: str, data: Any) -> None:
        """Store a table (``log_table``) in the background (rank 0 only)."""
        run = self.run() if self.lead else None
        if run is not None:
            self._submit(run, "log_table", name, data)

    def _store(self, path: str) -> None:
        run = self._run
        if run is not None:
            name = os.path.basename(os.path.normpath(path))
            self._submit(run, "log_file", path, name)

    def _submit(self, run: Run, call: str, *args: Any) -> None:
        if not self._portal_run:
            self._report("storing files", RuntimeError("the run given is an async sagerun.Run: files are stored "
                                                       "only for a sagerun.sync.Run"))
            return
        # Started on the engine's loop and not waited for: the training step goes on meanwhile.
        self._pending.append(_portal.submit(getattr(run._async, call), *args))

    def _register(self, run: Run, save_model: Callable[[str], None]) -> None:
        assert self.register_model is not None
        with tempfile.TemporaryDirectory(prefix="sagerun-model-") as folder:
            save_model(folder)
            run.register_model(self.register_model, folder)

    def _wait_for_files(self, run: Run) -> None:
        pending, self._pending = self._pending, []
        deadline = time.monotonic() + run.session.close_timeout
        for future in pending:
            try:
                future.result(timeout=max(0.0, deadline - time.monotonic()))
            except Exception as exc:  # a timeout included: the run closes without that file
                self._report("storing a file", exc)

    # -- never in the way -------------------------------------------------------------------------

    def safely(self, fn: Callable[..., T], *args: Any) -> T | None:
        """``fn(*args)``, or ``None`` if it raised: the error is counted and logged once per kind."""
        try:
            return fn(*args)
        except Exception as exc:
            self._report(getattr(fn, "__name__", "a callback"), exc)
            return None

    def _report(self, where: str, exc: BaseException) -> None:
        self.stats.errors += 1
        kind = (where, type(exc))
        if kind not in self._reported:
            self._reported.add(kind)
            logger.warning("sagerun: the %s integration failed in %s, and the training goes on (said once for "
                           "this kind of error): %s: %s", self.framework, where.strip("_"), type(exc).__name__, exc,
                           exc_info=exc)
