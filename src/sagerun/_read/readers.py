"""Read · the reader of a session's backend, or of the backend a caller names."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, Sequence

from .._model.session import Session
from ..backends import backend_name
from .local import LocalReader
from .query import Query, check
from .rows import RunRow

Source = Literal["local", "sagemaker", "mlflow"]
SOURCES: tuple[str, ...] = ("local", "sagemaker", "mlflow")


def open_reader(session: Session, source: str | None = None) -> Any:
    """A reader of ``source`` (the session's backend when ``None``), to enter with ``async with``.

    Raises:
        ValueError: ``source`` is not one of ``SOURCES``.
    """
    name = source or backend_name(session)
    if name not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")
    if name == "local":
        return LocalReader(session.store_path)
    if name == "mlflow":
        from .mlflow import MlflowReader

        return MlflowReader(session)
    from .sagemaker import SageMakerReader

    return SageMakerReader(session)


async def find(reader: Any, refs: Sequence[tuple[str, str]], where: str) -> list[RunRow]:
    """The rows of the runs ``refs`` names as ``(experiment, run)``, in their order; children too.

    Raises:
        LookupError: a run is not in ``where`` (the reader's source, as the message says it).
    """
    query = dataclasses.replace(check(sorted({experiment for experiment, _ in refs}), include_children=True),
                                runs=frozenset(refs))
    found = {(row.experiment, row.run): row for row in await search(reader, query)}
    missing = [f"{e}/{r}" for e, r in refs if (e, r) not in found]
    if missing:
        raise LookupError(f"no run {', '.join(missing)} in {where}: search_runs() lists the runs there are")
    return [found[ref] for ref in refs]


async def search(reader: Any, query: Query, *, all_stats: bool = False) -> list[RunRow]:
    """The rows of ``query``: what the reader returns, filtered, ordered and cut here as for every
    backend; an order by a statistic other than the last reads every statistic (MLflow's histories)."""
    needs_stats = any(term.kind == "metric" and term.stat != "last" for term in query.order_by)
    return query.apply(await reader.runs(query, all_stats=all_stats or needs_stats))
