"""Entry · what ``compare`` and ``export`` read through the read layer: runs of the local store,
SageMaker or an MLflow server (``--source``), named ``experiment/run``."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, TypeVar

import anyio
import click

from .._model.naming import check_name
from .._model.session import Session
from .._read import query as queries, readers
from .._read.rows import History, RunRow
from .common import store_path

F = TypeVar("F", bound=Callable[..., Any])


def source_option(command: F) -> F:
    return click.option("--source", type=click.Choice(list(readers.SOURCES)), default="local", show_default=True,
                        help="Where the runs are read: the local store, SageMaker (AWS credentials) or an MLflow "
                             "server (MLFLOW_TRACKING_URI).")(command)


def session_for(store: str | None) -> Session:
    return dataclasses.replace(Session.from_env(), store=store_path(store))


def split(ref: str) -> tuple[str, str]:
    """``experiment/run`` as the names a backend keeps.

    Raises:
        click.UsageError: ``ref`` is not ``experiment/run``.
    """
    experiment, slash, run = ref.partition("/")
    if not slash or not experiment or not run:
        raise click.UsageError(f"name runs as EXPERIMENT/RUN with --source other than local; got {ref!r}")
    return check_name("RUN's experiment", experiment), check_name("RUN", run)


def rows(store: str | None, source: str, refs: tuple[str, ...]) -> list[RunRow]:
    """The rows of ``refs``, in their order.

    Raises:
        LookupError: a run is not there.
    """
    wanted = [split(ref) for ref in refs]

    async def read() -> list[RunRow]:
        async with readers.open_reader(session_for(store), source) as reader:
            return await readers.find(reader, wanted, source)

    return anyio.run(read)


def histories(store: str | None, source: str, row: RunRow) -> dict[str, History]:
    """Every metric's history of the run of ``row``, by name."""
    async def read() -> dict[tuple[str, str], History]:
        async with readers.open_reader(session_for(store), source) as reader:
            return await reader.histories([row], None)  # type: ignore[no-any-return]

    return {name: history for (_, name), history in sorted(anyio.run(read).items())}


def experiment_rows(store: str | None, source: str, experiment: str | None) -> list[RunRow]:
    """The runs of ``experiment`` (of every experiment when ``None``), newest first, children included."""
    async def read() -> list[RunRow]:
        query = queries.check(experiment, include_children=True)
        async with readers.open_reader(session_for(store), source) as reader:
            return await readers.search(reader, query)

    return anyio.run(read)


def listed(row: RunRow) -> dict[str, Any]:
    """What ``runs --json`` and ``show --json`` say of a run read through the read layer."""
    return {"experiment": row.experiment, "run": row.run, "trial_component_name": row.trial_component_name,
            "status": row.status, "status_message": row.status_message,
            "start_time": row.start_time.isoformat() if row.start_time else None,
            "end_time": row.end_time.isoformat() if row.end_time else None, "metric_count": len(row.metrics),
            "parent": row.parent, "tags": row.tags}
