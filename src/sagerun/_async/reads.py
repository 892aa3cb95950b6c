"""Run · reading runs back: ``search_runs`` (a DataFrame a run a row), ``metric_histories``, and
``ExperimentAnalytics``, the SageMaker SDK's, for notebooks that move over.

The same on every backend: SageMaker (Search, BatchGetMetrics), an MLflow tracking server
(``runs/search``, ``metrics/get-history``) and the local store, through ``sagerun._read``.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Sequence

from .._model.naming import check_name
from .._model.session import Session
from .._read import frames, query as queries, readers
from .._read.rows import RunRow
from .run import Run

Stats = Literal["summary", "all"]


async def search_runs(experiment_names: str | Sequence[str] | None = None, *, tags: Mapping[str, str] | None = None,
                      status: str | Sequence[str] | None = None,
                      parameters: Mapping[str, str | int | float] | None = None,
                      order_by: str | Sequence[str] | None = None, max_results: int | None = None,
                      include_children: bool = False, stats: Stats = "summary", session: Session | None = None,
                      source: str | None = None, as_frame: bool | None = None) -> Any:
    """The runs that answer every filter, one row a run: a pandas DataFrame where pandas is
    installed (``as_frame=None``), else a list of dicts (``as_frame=False``).

    Columns: ``experiment``, ``run``, ``run_group``, ``trial_component_name`` (the MLflow run id
    on MLflow), ``status``, ``status_message``, ``start_time``, ``end_time``, ``parent``, then
    ``tag.<key>``, ``param.<name>`` and ``metric.<name>.<stat>`` for ``last``, ``min``, ``max``,
    ``avg`` and ``count``: SageMaker's metric summaries, the local store's, and MLflow's latest
    value, whose other statistics stay empty unless ``stats="all"`` reads each history.

    Filters are pushed down where the backend's API takes them (Search's tag filters, MLflow's
    filter string, SQL) and applied to what comes back on every backend, so none is dropped.

    Args:
        experiment_names: an experiment or a list of them; every experiment when ``None``.
        tags: only runs with each of these tags with that value.
        status: only runs with this status (or one of these): InProgress, Completed, Failed,
            Stopping, Stopped.
        parameters: only runs with each of these parameters equal to that value.
        order_by: terms ``"metric.<name>.<stat> [ASC|DESC]"``, ``"param.<name>"``,
            ``"tag.<key>"`` or a column (``start_time``, ``end_time``, ``created_time``, ``run``,
            ``experiment``, ``status``); a run without the value comes last. Newest first when ``None``.
        max_results: at most this many rows, after ordering.
        include_children: list child runs (``Run.child_run``) too.
        stats: ``"all"`` reads MLflow's histories for every statistic; the other backends keep them.
        session: connection settings; ``Session.from_env()`` when ``None``.
        source: ``"local"``, ``"sagemaker"`` or ``"mlflow"``; the session's backend when ``None``.
        as_frame: a DataFrame (``True``), a list of dicts (``False``), or whichever pandas allows.

    Raises:
        TypeError, ValueError: an argument breaks its rule (the message names it).
        RuntimeError: ``as_frame=True`` without pandas.
        BackendError: the backend could not be read (NoStoreError: there is no local store).
    """
    query = queries.check(experiment_names, tags, status, parameters, order_by, max_results, include_children)
    if stats not in ("summary", "all"):
        raise ValueError(f"stats must be 'summary' or 'all'; got {stats!r}")
    frames.pandas_or_none(as_frame)  # a missing pandas is said before anything is read
    session = session if session is not None else Session.from_env()
    async with readers.open_reader(session, source) as reader:
        rows = await readers.search(reader, query, all_stats=stats == "all")
    return frames.runs_table(rows, as_frame)


async def metric_histories(runs: Any, names: str | Sequence[str] | None = None, *, session: Session | None = None,
                           source: str | None = None, as_frame: bool | None = None) -> Any:
    """Every point of metrics ``names`` (all of each run's when ``None``) of ``runs``: one long
    DataFrame with ``experiment``, ``run``, ``metric``, ``step`` (-1 for a point logged without
    one), ``timestamp`` (UTC) and ``value``; without pandas (``as_frame=False``), a dict of
    ``(experiment/run, metric)`` to ``History`` arrays (steps, epoch seconds, values).

    From the local store's blocks, MLflow's ``metrics/get-history`` (a page of 25,000 points at a
    time), and SageMaker's BatchGetMetrics: there, the last value logged at each step.

    Args:
        runs: ``Run`` objects, ``"experiment/run"`` names, or a ``search_runs`` DataFrame (or its records).
        names: a metric or a list of them.
        session: connection settings; those of the first ``Run`` given, else ``Session.from_env()``.
        source: ``"local"``, ``"sagemaker"`` or ``"mlflow"``; the session's backend when ``None``.
        as_frame: a DataFrame (``True``), a dict of arrays (``False``), or whichever pandas allows.

    Raises:
        TypeError, ValueError: a bad run or name.
        LookupError: a run named is not found.
        BackendError: the backend could not be read.
    """
    wanted = _names(names)
    refs = _refs(runs)
    frames.pandas_or_none(as_frame)
    session = session if session is not None else _session_of(runs) or Session.from_env()
    async with readers.open_reader(session, source) as reader:
        rows = await _rows_of(reader, refs)
        found = await reader.histories(rows, wanted)
    return frames.history_table(found, {row.trial_component_name: row for row in rows}, as_frame)


async def _history_of(run: Run, name: str, as_frame: bool | None) -> Any:
    """``run.metric_history(name)``: the points of one metric (see ``Run.metric_history``)."""
    (wanted,) = _names(name) or [name]
    async with readers.open_reader(run.session) as reader:
        (row,) = await _rows_of(reader, [(run.experiment_name, run.run_name)])
        found = await reader.histories([row], [wanted])
    history = found.get((row.trial_component_name, wanted))
    if history is None or (not len(history.values) and wanted not in row.metrics):
        raise KeyError(f"run {row.ref} has no metric {wanted!r} (yet: points still queued are read after flush())")
    return frames.one_history(history, as_frame)


class ExperimentAnalytics:
    """The SageMaker SDK's ``ExperimentAnalytics``, over any backend: ``dataframe()`` gives a row
    per run with the SDK's column names (``TrialComponentName``, ``DisplayName``, each parameter
    by its name, ``<metric> - Min`` / ``Max`` / ``Avg`` / ``StdDev`` / ``Last`` / ``Count``,
    ``Trials``, ``Experiments``), so that a notebook moves over by changing its import.

    Args:
        experiment_name: the experiment.
        session: connection settings; ``Session.from_env()`` when ``None``.
        sort_by: ``"CreationTime"`` or ``"Name"``, or a metric's ``"metrics.<name>.<stat>"`` as the SDK takes it.
        sort_order: ``"Ascending"`` or ``"Descending"``.
        metric_names: only these metrics' columns; all when ``None``.
        parameter_names: only these parameters' columns; all when ``None``.

    Raises:
        TypeError, ValueError: a bad name or sort.
    """

    def __init__(self, experiment_name: str, *, session: Session | None = None, sort_by: str = "CreationTime",
                 sort_order: str = "Ascending", metric_names: Sequence[str] | None = None,
                 parameter_names: Sequence[str] | None = None) -> None:
        self.experiment_name: str = check_name("experiment_name", experiment_name)
        if sort_order not in ("Ascending", "Descending"):
            raise ValueError(f"sort_order must be 'Ascending' or 'Descending'; got {sort_order!r}")
        self._order = _analytics_order(sort_by, sort_order == "Descending")
        queries.check(order_by=self._order)  # a bad sort is said here, not at dataframe()
        self.session: Session | None = session
        self.metric_names: list[str] | None = list(metric_names) if metric_names is not None else None
        self.parameter_names: list[str] | None = list(parameter_names) if parameter_names is not None else None

    async def dataframe(self, force_refresh: bool = False) -> Any:
        """The experiment's runs as the SDK's DataFrame; every call reads them anew
        (``force_refresh`` is taken for the SDK's sake).

        Raises:
            RuntimeError: pandas is not installed.
            BackendError: the backend could not be read.
        """
        frames.pandas_or_none(True)
        rows = await _search([self.experiment_name], self.session, self._order, stats_all=True)
        return frames.analytics_table(rows, self.metric_names, self.parameter_names)


async def _search(experiments: Sequence[str], session: Session | None, order_by: Sequence[str],
                  stats_all: bool) -> list[RunRow]:
    query = queries.check(list(experiments), order_by=list(order_by))
    async with readers.open_reader(session if session is not None else Session.from_env()) as reader:
        return await readers.search(reader, query, all_stats=stats_all)


def _analytics_order(sort_by: str, descending: bool) -> list[str]:
    direction = " DESC" if descending else " ASC"
    if sort_by == "CreationTime":
        return ["created_time" + direction]
    if sort_by == "Name":
        return ["run" + direction]
    if sort_by.startswith("metrics."):  # the SDK's "metrics.<name>.<stat>"
        name, _, stat = sort_by[len("metrics."):].rpartition(".")
        return [f"metric.{name}.{stat.lower()}{direction}"]
    raise ValueError(f"sort_by must be 'CreationTime', 'Name' or 'metrics.<name>.<stat>' (Min, Max, Avg, Last, "
                     f"Count); got {sort_by!r}")


def _names(names: str | Sequence[str] | None) -> list[str] | None:
    if names is None:
        return None
    listed = [names] if isinstance(names, str) else list(names)
    if not listed or not all(isinstance(name, str) and name for name in listed):
        raise TypeError("names must be a metric's name or a list of them")
    return listed


def _refs(runs: Any) -> list[tuple[str, str]]:
    """``(experiment, run)`` of each run given."""
    if hasattr(runs, "to_dict") and hasattr(runs, "columns"):  # a search_runs DataFrame
        runs = runs.to_dict("records")
    if isinstance(runs, (Run, str, Mapping)) or hasattr(runs, "_async"):
        runs = [runs]
    found = []
    for run in runs:
        run = getattr(run, "_async", run)  # a sagerun.sync.Run
        if isinstance(run, Run):
            found.append((run.experiment_name, run.run_name))
        elif isinstance(run, Mapping) and "experiment" in run and "run" in run:
            found.append((str(run["experiment"]), str(run["run"])))
        elif isinstance(run, str) and run.count("/") == 1:
            experiment, name = run.split("/")
            found.append((check_name("experiment", experiment), check_name("run", name)))
        else:
            raise TypeError(f"runs must be Run objects, 'experiment/run' names or search_runs rows; got {run!r}")
    return found


def _session_of(runs: Any) -> Session | None:
    for run in runs if isinstance(runs, (list, tuple)) else [runs]:
        run = getattr(run, "_async", run)
        if isinstance(run, Run):
            return run.session
    return None


async def _rows_of(reader: Any, refs: Sequence[tuple[str, str]]) -> list[RunRow]:
    return await readers.find(reader, refs, type(reader).__name__.replace("Reader", ""))
