"""Entry · ``sagerun export``: every metric point of a run, as CSV or JSON, written one series at a time."""

from __future__ import annotations

import contextlib
import csv
import sys
from typing import IO, Any, Iterator

import click
import orjson

from ..store import queries
from ..store.metrics import NO_STEP, Series
from ..store.records import load_parameters
from . import remote
from .common import open_store, store_options
from .remote import source_option


@click.command(short_help="Every metric point of a run, as CSV or JSON.")
@store_options
@source_option
@click.argument("run")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="csv: one row per point (metric, step, timestamp, value); json: the run with its series.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to this file instead of stdout.")
def export(store: str | None, as_json: bool, source: str, run: str, fmt: str, output: str | None) -> None:
    """Export every metric point of RUN as CSV or JSON (--json is --format json)."""
    fmt = "json" if as_json else fmt
    if source != "local":
        _export_read(store, source, run, fmt, output)
        return
    with open_store(store) as conn:
        info = queries.find_run(conn, run)  # before the output file is created: no empty file on a typo
        series = queries.read_metrics(conn, info.id)
        with _sink(output) as sink:
            if fmt == "csv":
                count = _write_csv(sink, series)
            else:
                count = _write_json(sink, info, load_parameters(conn, info.id), series)
    if output:
        click.echo(f"wrote {count:,} points of {info.ref} to {output}", err=True)


def _export_read(store: str | None, source: str, ref: str, fmt: str, output: str | None) -> None:
    """The export of a run of SageMaker or an MLflow server, through the read layer."""
    (row,) = remote.rows(store, source, (ref,))
    series = [Series(name, h.steps, h.timestamps, h.values) for name, h in remote.histories(store, source, row).items()]
    with _sink(output) as sink:
        if fmt == "csv":
            count = _write_csv(sink, iter(series))
        else:
            head = {"experiment": row.experiment, "run": row.run, "trial_component_name": row.trial_component_name,
                    "status": row.status, "parameters": row.parameters}
            sink.write(orjson.dumps(head).decode()[:-1] + ',"metrics":[')
            count = _write_series(sink, iter(series))
    if output:
        click.echo(f"wrote {count:,} points of {row.ref} to {output}", err=True)


@contextlib.contextmanager
def _sink(output: str | None) -> Iterator[IO[str]]:
    if output is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with open(output, "w", newline="", encoding="utf-8") as file:
        yield file


def _write_csv(sink: IO[str], all_series: Iterator[Any]) -> int:
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow(["metric", "step", "timestamp", "value"])
    count = 0
    for series in all_series:
        writer.writerows((name, "" if step is None else step, repr(timestamp), repr(value))
                         for name, value, step, timestamp in series.points())
        count += len(series.values)
    return count


def _write_json(sink: IO[str], info: queries.RunInfo, parameters: dict[str, Any], all_series: Iterator[Any]) -> int:
    # Written one series at a time so that a run of millions of points never sits in memory as JSON:
    # the run's object is opened without its closing brace, and the series follow.
    head = orjson.dumps({**info.as_json(), "parameters": parameters}).decode()
    sink.write(head[:-1] + ',"metrics":[')
    return _write_series(sink, all_series)


def _write_series(sink: IO[str], all_series: Iterator[Any]) -> int:
    """The series of a JSON export, and its closing brace."""
    count = 0
    for n, series in enumerate(all_series):
        steps: Any = series.steps
        if (steps == NO_STEP).any():
            steps = [None if s == NO_STEP else s for s in steps.tolist()]
        sink.write(("," if n else "") + orjson.dumps(
            {"name": series.name, "steps": steps, "timestamps": series.timestamps, "values": series.values},
            option=orjson.OPT_SERIALIZE_NUMPY).decode())
        count += len(series.values)
    sink.write("]}\n")
    return count
