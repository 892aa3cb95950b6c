"""Read · the reader of a session's backend, or of the backend a caller names."""

from __future__ import annotations

from typing import Any, Literal

from .._model.session import Session
from ..backends import backend_name
from .local import LocalReader
from .query import Query
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


async def search(reader: Any, query: Query, *, all_stats: bool = False) -> list[RunRow]:
    """The rows of ``query``: what the reader returns, filtered, ordered and cut here as for every
    backend; an order by a statistic other than the last reads every statistic (MLflow's histories)."""
    needs_stats = any(term.kind == "metric" and term.stat != "last" for term in query.order_by)
    return query.apply(await reader.runs(query, all_stats=all_stats or needs_stats))
