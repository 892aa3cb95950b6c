"""Entry · the ``sagerun`` command: look at runs in the local store, export them, and sync them to SageMaker.

Every command takes ``--store PATH`` (default: ``$SAGERUN_HOME``, else ``./sagerun``) and ``--json``
for scripts. Failures print one line on stderr and exit with status 1, never a traceback (``-v``
logs it).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from .._artifacts.preview import DEFAULT_ROWS, DEFAULT_SIZE, artifact_kinds, chart_png, table_preview
from .._model.session import Session
from .._model.tags import as_dict
from ..store import queries
from ..store.models import list_models
from ..store.records import load_run
from .common import (Group, duration, echo_json, local_time, make_console, make_table, number, open_store,
                     store_options, store_path)
from . import remote
from .export import export
from .remote import source_option
from .models import models
from .ui import ui


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Log more (-v: info, -vv: debug with tracebacks).")
@click.version_option(package_name="sagerun")
def cli(verbose: int) -> None:
    """Experiment tracking for Amazon SageMaker: runs in the local store, and their sync to SageMaker."""
    level = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    # Only sagerun's own logger goes to DEBUG: botocore's debug log prints request headers, session
    # tokens included.
    logging.getLogger("sagerun").setLevel(level)


@cli.command(short_help="Train a small model, logged to the local store (no AWS needed).")
@store_options
@click.option("--epochs", default=30, show_default=True, help="Passes over the training set.")
@click.option("--seed", default=0, show_default=True, help="Seed of the split, the initial order and the batches.")
def demo(store: str | None, as_json: bool, epochs: int, seed: int) -> None:
    """Train a small classifier on scikit-learn's digits and log it to the local store (no AWS needed)."""
    import anyio

    from ..demo import train

    path = store_path(store)
    result = anyio.run(functools.partial(train, path, epochs=epochs, seed=seed))
    command = f"sagerun show {result.ref}"
    if store and store != Session.from_env().store_path:
        command += f" --store {path}"
    browse = "sagerun ui" + (f" --store {path}" if " --store " in command else "")
    if as_json:
        echo_json({**dataclasses.asdict(result), "show": command, "ui": browse})
        return
    click.echo(f"Trained a logistic regression on scikit-learn's digits: {epochs} epochs, {result.steps} steps, "
               f"validation accuracy {result.val_accuracy:.3f} ({result.seconds:.1f} s).")
    click.echo(f"Logged run {result.ref} to the local store {path}/sagerun.db")
    click.echo(f"See it with:  {command}")
    click.echo(f"Draw its confusion matrix:  {command.replace('show', 'chart', 1)} val-confusion --out confusion.png"
               "  (with pip install 'sagerun[charts]')")
    click.echo(f"Browse it:  {browse}  (with pip install 'sagerun[ui]'), then open the URL it prints")


@cli.command(short_help="List the runs of the local store.")
@store_options
@source_option
@click.argument("experiment", required=False)
@click.option("--tree", is_flag=True, help="Child runs under their parents (with --json: each with its depth).")
def runs(store: str | None, as_json: bool, source: str, experiment: str | None, tree: bool) -> None:
    """List the runs of the local store, or of EXPERIMENT, newest first (as list_runs does)."""
    if source != "local":
        _runs_read(store, as_json, source, experiment)
        return
    with open_store(store) as conn:
        found = queries.list_runs(conn, experiment)[::-1]
    listed = queries.as_tree(found) if tree else [(0, run) for run in found]
    if as_json:
        echo_json([{**run.as_json(), **({"depth": depth} if tree else {})} for depth, run in listed])
        return
    if not found:
        click.echo(f"no runs in {store_path(store)} yet: `sagerun demo` logs one")
        return
    table = make_table("Experiment", "Run", "Status", "Started", "Duration", "Metrics", "Points")
    for depth, run in listed:
        name = Text(("   " * (depth - 1) + " └ " if depth else "") + run.name)
        table.add_row(run.experiment, name, run.status or "-", local_time(run.start_time), duration(run.duration),
                      str(run.metrics), f"{run.points:,}")
    make_console().print(table)


def _runs_read(store: str | None, as_json: bool, source: str, experiment: str | None) -> None:
    """``runs --source``: the runs of SageMaker or an MLflow server."""
    rows = remote.experiment_rows(store, source, experiment)
    if as_json:
        echo_json([remote.listed(row) for row in rows])
        return
    table = make_table("Experiment", "Run", "Status", "Started", "Duration", "Metrics")
    for row in rows:
        start, end = row.start_time, row.end_time
        table.add_row(row.experiment, row.run, row.status or "-", local_time(start.timestamp() if start else None),
                      duration((end - start).total_seconds() if start and end else None), str(len(row.metrics)))
    make_console().print(table if rows else f"no runs in {source}")


@cli.command(short_help="A run's parameters, and last/min/max/count of each metric.")
@store_options
@source_option
@click.argument("run")
def show(store: str | None, as_json: bool, source: str, run: str) -> None:
    """Show RUN (a run name or EXPERIMENT/RUN): its parameters and, per metric, last, min, max and count."""
    if source != "local":
        _show_read(store, as_json, source, run)
        return
    with open_store(store) as conn:
        info = queries.find_run(conn, run)
        record = load_run(conn, info.id)
        summaries = queries.metric_summaries(conn, info.id)
        registered = list_models(conn, run=info.trial_component_name)
        children = queries.children(conn, info)
    artifacts: dict[str, dict[str, dict[str, Any]]] = {}
    for direction, held in (("input", record.input_artifacts), ("output", record.output_artifacts)):
        # What each one is (a chart, a table, a file, a value): read from the first line of local documents.
        kinds = artifact_kinds(store_path(store), info.trial_component_name, held)
        artifacts[direction] = {name: {**dataclasses.asdict(a), "kind": kinds[name]} for name, a in held.items()}
    if as_json:
        echo_json({**info.as_json(), "tags": as_dict(record.tags), "parameters": record.parameters,
                   "artifacts": artifacts, "children": children,
                   "models": [version._asdict() for version in registered],
                   "metrics": [s.as_json() for s in summaries]})
        return
    console = make_console()
    console.print(f"[bold]{info.ref}[/bold]  {info.status or '-'}  started {local_time(info.start_time)}  "
                  f"duration {duration(info.duration)}", markup=True)
    if info.status_message:
        console.print(f"status message: {info.status_message}", markup=False)
    if record.parent:
        console.print(f"child of {record.parent}", markup=False)
    if children:
        console.print(f"children: {', '.join(children)}", markup=False)
    if record.tags:
        console.print("tags: " + ", ".join(f"{k}={v}" for k, v in as_dict(record.tags).items()), markup=False)
    parameters = make_table("Parameter", "Value", title="Parameters")
    for name, value in record.parameters.items():
        parameters.add_row(name, number(value))
    metrics = make_table("Metric", "Last", "Step", "Min", "Max", "Count", title="Metrics")
    for s in summaries:
        metrics.add_row(s.name, number(s.last), number(s.last_step), number(s.min), number(s.max), f"{s.count:,}")
    console.print(parameters if record.parameters else "no parameters")
    console.print(metrics if summaries else "no metrics")
    for kind, group in artifacts.items():
        if group:
            table = make_table("Name", "Kind", "Value", "Media type", title=f"{kind.capitalize()} artifacts")
            for name, artifact in group.items():
                table.add_row(Text(name), artifact["kind"], Text(artifact["value"]), artifact["media_type"] or "-")
            console.print(table)
    for version in registered:
        console.print(f"registered {version.id} ({version.approval_status})", markup=False)


def _show_read(store: str | None, as_json: bool, source: str, ref: str) -> None:
    """``show --source``: a run of SageMaker or an MLflow server, as its backend summarises it."""
    (row,) = remote.rows(store, source, (ref,))
    metrics = [{"name": name, "last": m.last, "min": m.min, "max": m.max, "avg": m.avg, "count": m.count}
               for name, m in row.metrics.items()]
    if as_json:
        echo_json({**remote.listed(row), "parameters": row.parameters, "metrics": metrics})
        return
    console = make_console()
    console.print(f"[bold]{row.ref}[/bold]  {row.status or '-'}  ({source})", markup=True)
    if row.tags:
        console.print("tags: " + ", ".join(f"{k}={v}" for k, v in row.tags.items()), markup=False)
    parameters = make_table("Parameter", "Value", title="Parameters")
    for name, value in row.parameters.items():
        parameters.add_row(name, number(value))
    table = make_table("Metric", "Last", "Min", "Max", "Count", title="Metrics")
    for m in metrics:
        table.add_row(m["name"], number(m["last"]), number(m["min"]), number(m["max"]), number(m["count"]))
    console.print(parameters if row.parameters else "no parameters")
    console.print(table if metrics else "no metrics")


@cli.command(short_help="The first rows of a table a run logged.")
@store_options
@click.argument("run")
@click.argument("name")
@click.option("--rows", "-n", default=DEFAULT_ROWS, show_default=True, type=click.IntRange(0),
              help="How many rows to show (only those are read, however large the table).")
def table(store: str | None, as_json: bool, run: str, name: str, rows: int) -> None:
    """Print the first rows of table NAME that RUN (a run name or EXPERIMENT/RUN) logged with log_table."""
    found, preview = table_preview(store_path(store), run, name, rows=rows)
    if as_json:
        echo_json({"run": found.run.ref, "artifact": name, "value": found.artifact.value, "title": preview.title,
                   "columns": preview.columns, "rows": preview.rows, "row_count": preview.row_count})
        return
    console = make_console()
    # A line of its own: as a table title it would wrap to the width of a narrow table.
    console.print(f"{name} of {found.run.ref}: {len(preview.rows):,} of {preview.row_count:,} rows", markup=False)
    shown = make_table(*preview.column_names)
    for row in preview.rows:
        # Text, not markup: a cell reading "[red]" is data.
        shown.add_row(*(Text(number(cell)) for cell in row))
    console.print(shown)


@cli.command(short_help="Draw a chart a run logged (confusion matrix, ROC, precision-recall) to a PNG.")
@store_options
@click.argument("run")
@click.argument("name")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The PNG file to write.")
@click.option("--width", default=DEFAULT_SIZE[0], show_default=True, type=click.IntRange(100, 10_000),
              help="Width in pixels.")
@click.option("--height", default=DEFAULT_SIZE[1], show_default=True, type=click.IntRange(100, 10_000),
              help="Height in pixels.")
def chart(store: str | None, as_json: bool, run: str, name: str, out: str, width: int, height: int) -> None:
    """Draw chart NAME of RUN, logged with log_confusion_matrix, log_roc_curve or log_precision_recall, to a
    PNG image. Needs matplotlib: pip install 'sagerun[charts]'."""
    drawn = chart_png(store_path(store), run, name, out, width=width, height=height)
    if as_json:
        echo_json(drawn)
        return
    click.echo(f"drew {drawn['type']} {name!r} of {drawn['run']} to {drawn['out']} ({width}x{height} pixels)")


@cli.command(short_help="Parameters and final metric values of runs, side by side.")
@store_options
@source_option
@click.option("--experiment", default=None, help="Compare every run of this experiment (a tuning job's trials).")
@click.argument("run_refs", metavar="RUN RUN...", nargs=-1)
def compare(store: str | None, as_json: bool, source: str, experiment: str | None, run_refs: tuple[str, ...]) -> None:
    """Compare runs side by side: their parameters and the last value of each metric."""
    if experiment is not None:
        run_refs += tuple(row.ref for row in remote.experiment_rows(store, source, experiment))
    if len(run_refs) < 2:
        raise click.UsageError("compare needs at least two runs, e.g. `sagerun compare RUN_A RUN_B` or "
                               "`sagerun compare --experiment EXPERIMENT`")
    if source == "local":  # the local store also finds a run by its name alone
        with open_store(store) as conn:
            run_refs = tuple(queries.find_run(conn, ref).ref for ref in run_refs)
    found = remote.rows(store, source, run_refs)
    parameters = [row.parameters for row in found]
    finals = [{name: stats.last for name, stats in row.metrics.items()} for row in found]
    if as_json:
        echo_json({"runs": [{"experiment": row.experiment, "run": row.run,
                             "trial_component_name": row.trial_component_name, "status": row.status,
                             "parameters": p, "metrics": f} for row, p, f in zip(found, parameters, finals)]})
        return
    table = make_table("", *(row.ref for row in found))
    table.add_row("status", *(row.status or "-" for row in found))
    for section, by_run in (("parameter", parameters), ("metric", finals)):
        names = sorted(set().union(*by_run))
        for position, name in enumerate(names):
            cells = [number(values.get(name)) for values in by_run]
            # Bold where the runs differ: what a comparison is looked at for.
            table.add_row(f"[dim]{section}[/dim] {name}", *cells, end_section=position == len(names) - 1,
                          style="bold" if len(set(cells)) > 1 else None)
    make_console().print(table)


@cli.command(short_help="Send undelivered points, and local runs, to SageMaker.")
@store_options
@click.option("--run", "run_refs", metavar="RUN", multiple=True,
              help="Also push this run of the local store to SageMaker (repeatable).")
@click.option("--all-local", is_flag=True, help="Also push every run of the local store to SageMaker.")
@click.option("--retry-refused", is_flag=True, help="Send again the points SageMaker refused before.")
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 64),
              help="Requests in flight.")
@click.option("--deadline", type=click.FloatRange(0), default=None,
              help="Seconds to keep retrying a failing request [default: the session's retry_deadline, 60].")
@click.option("--from", "from_uri", metavar="S3_URI", default=None,
              help="First take in the spool files a run kept beyond its SageMaker job (s3://.../spool/).")
def sync(store: str | None, as_json: bool, run_refs: tuple[str, ...], all_local: bool, retry_refused: bool,
         concurrency: int, deadline: float | None, from_uri: str | None) -> None:
    """Deliver to SageMaker the points that could not be delivered before (the spool).

    Points leave the spool only once SageMaker has them: sync is safe to interrupt and to run again.
    Points SageMaker refuses (VALIDATION_ERROR, METRIC_LIMIT_EXCEEDED) are set aside and reported.
    """
    import anyio

    from .._upload import upload_store

    session = Session.from_env(store=store_path(store))
    if deadline is not None:
        session = dataclasses.replace(session, retry_deadline=deadline)
    with _ProgressBar(enabled=not as_json) as progress:
        report = anyio.run(functools.partial(upload_store, session, runs=run_refs, all_local=all_local,
                                             retry_refused=retry_refused, concurrency=concurrency,
                                             progress=progress, from_uri=from_uri))
    if as_json:
        echo_json(report.as_json())
        if report.error:
            sys.exit(1)
        return
    if report.fetched:
        click.echo(f"took {report.fetched:,} points kept beyond a SageMaker job from {from_uri}")
    if report.recovered:
        click.echo(f"took {report.recovered:,} points spilled to disk by runs whose process was killed")
    for ref in report.saved:
        click.echo(f"saved the final status and parameters of run {ref}, which could not be saved when it closed")
    for ref, count in report.pushed.items():
        click.echo(f"pushed run {ref} to SageMaker: {count:,} new points to send")
    if report.delivered or report.pushed or report.saved:
        click.echo(f"delivered {report.delivered:,} points to SageMaker")
    elif not report.error:
        click.echo("nothing to sync: no points are waiting in the spool")
    for code, count in report.refused.items():
        click.echo(f"{count:,} points refused by SageMaker ({code}) and set aside in the spool", err=True)
    if report.set_aside:
        kept = ", ".join(f"{count:,} {code}" for code, count in report.set_aside.items())
        click.echo(f"set aside in the spool: {kept}; fix the cause, then `sagerun sync --retry-refused`", err=True)
    if report.error:
        raise click.ClickException(f"sync stopped, {report.pending:,} points kept in the spool for the next "
                                   f"`sagerun sync`: {report.error}")


class _ProgressBar:
    """A rich progress bar on stderr, shown only to a person at a terminal."""

    def __init__(self, enabled: bool) -> None:
        from rich.progress import Progress

        console = Console(stderr=True)
        self._progress = Progress(console=console, transient=True, disable=not (enabled and console.is_terminal))
        self._task: Any = None

    def __enter__(self) -> _ProgressBar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._progress.__exit__(*exc_info)

    def start(self, total: int) -> None:
        self._task = self._progress.add_task("syncing to SageMaker", total=total)

    def advance(self, settled: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, settled)


cli.add_command(export)
cli.add_command(models)
cli.add_command(ui)


def main() -> None:
    """Entry point of the ``sagerun`` command."""
    cli(prog_name="sagerun")
