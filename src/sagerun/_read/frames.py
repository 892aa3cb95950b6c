"""Read · rows and histories as tables: a pandas DataFrame where pandas is installed, else plain
records and arrays. sagerun never needs pandas; these only use it when it is there."""

from __future__ import annotations

import importlib.util
from typing import Any, Mapping, Sequence

from .rows import STATS, History, RunRow

_BASE = ("experiment", "run", "run_group", "trial_component_name", "status", "status_message", "start_time",
         "end_time", "parent")
_ANALYTICS_STATS = (("min", "Min"), ("max", "Max"), ("avg", "Avg"), ("std", "StdDev"), ("last", "Last"),
                    ("count", "Count"))


def pandas_or_none(as_frame: bool | None) -> Any:
    """pandas if a frame is wanted (``None``: whenever pandas is installed), else ``None``.

    Raises:
        RuntimeError: ``as_frame=True`` without pandas.
    """
    if as_frame is False or (as_frame is None and importlib.util.find_spec("pandas") is None):
        return None
    try:
        import pandas
    except ImportError:
        raise RuntimeError("as_frame=True needs pandas: pip install pandas") from None
    return pandas


def run_records(rows: Sequence[RunRow]) -> list[dict[str, Any]]:
    """One flat record per run: experiment, run, run group, status, times, parent, ``tag.<key>``,
    ``param.<name>`` and ``metric.<name>.<stat>`` (last, min, max, avg, count)."""
    records = []
    for row in rows:
        record: dict[str, Any] = {column: getattr(row, column) for column in _BASE}
        record.update({f"tag.{key}": value for key, value in sorted(row.tags.items())})
        record.update({f"param.{name}": value for name, value in sorted(row.parameters.items())})
        for name, stats in row.metrics.items():
            record.update({f"metric.{name}.{stat}": getattr(stats, stat) for stat in STATS})
        records.append(record)
    return records


def runs_table(rows: Sequence[RunRow], as_frame: bool | None) -> Any:
    records = run_records(rows)
    pandas = pandas_or_none(as_frame)
    if pandas is None:
        return records
    columns = list(dict.fromkeys(key for record in records for key in record)) or list(_BASE)
    return pandas.DataFrame.from_records(records, columns=columns)


def history_table(found: Mapping[tuple[str, str], History], refs: Mapping[str, RunRow], as_frame: bool | None) -> Any:
    """The histories as one long table (experiment, run, metric, step, timestamp, value), or a
    dict of ``History`` by ``(experiment/run, metric)``."""
    pandas = pandas_or_none(as_frame)
    if pandas is None:
        return {(refs[component].ref, name): history for (component, name), history in found.items()}
    parts = []
    for (component, name), history in found.items():
        row = refs[component]
        parts.append(pandas.DataFrame({
            "experiment": row.experiment, "run": row.run, "metric": name, "step": history.steps,
            "timestamp": pandas.to_datetime(history.timestamps, unit="s", utc=True), "value": history.values}))
    if not parts:
        return pandas.DataFrame(columns=["experiment", "run", "metric", "step", "timestamp", "value"])
    return pandas.concat(parts, ignore_index=True)


def one_history(history: History, as_frame: bool | None) -> Any:
    pandas = pandas_or_none(as_frame)
    if pandas is None:
        return history
    return pandas.DataFrame({"step": history.steps, "timestamp": pandas.to_datetime(history.timestamps, unit="s",
                                                                                      utc=True),
                             "value": history.values})


def analytics_table(rows: Sequence[RunRow], metric_names: Sequence[str] | None,
                    parameter_names: Sequence[str] | None) -> Any:
    """The SageMaker SDK's ``ExperimentAnalytics.dataframe()``: its column names, a row per run.

    Raises:
        RuntimeError: pandas is not installed (the SDK needs it too).
    """
    pandas = pandas_or_none(True)
    records = []
    for row in rows:
        record: dict[str, Any] = {"TrialComponentName": row.trial_component_name, "DisplayName": row.run}
        for name, value in sorted(row.parameters.items()):
            if parameter_names is None or name in parameter_names:
                record[name] = value
        for name, stats in row.metrics.items():
            if metric_names is None or name in metric_names:
                record.update({f"{name} - {label}": getattr(stats, stat) for stat, label in _ANALYTICS_STATS})
        record["Trials"] = [row.run_group] if row.run_group else []
        record["Experiments"] = [row.experiment]
        records.append(record)
    return pandas.DataFrame.from_records(records)

