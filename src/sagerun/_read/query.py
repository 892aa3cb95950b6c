"""Read · what a search asks, checked at the call, and the rules every backend applies alike:
the filters it could not push down, the order, the cut to ``max_results``.

A reader may push a filter down to its API (Search filters, MLflow's filter string, SQL); the rows
it returns are filtered again here, so that a filter an API ignores (moto ignores several) is never
silently dropped. ``order_by`` terms read ``"metric.<name>.<stat> [ASC|DESC]"``, ``"param.<name>"``,
``"tag.<key>"`` or a column (``start_time``, ``end_time``, ``run``, ``experiment``, ``status``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping, Sequence

from .._model.naming import check_name
from .._model.tags import as_dict, check_tags
from .rows import STATS, RunRow

STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
_COLUMNS = ("start_time", "end_time", "created_time", "run", "experiment", "status", "run_group")


@dataclasses.dataclass(frozen=True)
class Order:
    """One term of ``order_by``."""

    kind: str  # "metric", "param", "tag" or "column"
    name: str
    stat: str = "last"
    descending: bool = False

    def key(self, row: RunRow) -> Any:
        if self.kind == "metric":
            stats = row.metrics.get(self.name)
            return None if stats is None else getattr(stats, self.stat)
        if self.kind == "param":
            return row.parameters.get(self.name)
        if self.kind == "tag":
            return row.tags.get(self.name)
        return getattr(row, self.name)


@dataclasses.dataclass(frozen=True)
class Query:
    """A search's question, checked (see ``check``)."""

    experiment_names: tuple[str, ...] | None = None
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    statuses: tuple[str, ...] = ()
    parameters: dict[str, str | int | float] = dataclasses.field(default_factory=dict)
    order_by: tuple[Order, ...] = ()
    max_results: int | None = None
    include_children: bool = False
    runs: frozenset[tuple[str, str]] | None = None
    """only these ``(experiment, run)``: what a read of some runs' histories looks up"""

    def matches(self, row: RunRow) -> bool:
        """Whether ``row`` answers every filter."""
        if self.experiment_names is not None and row.experiment not in self.experiment_names:
            return False
        if self.runs is not None and (row.experiment, row.run) not in self.runs:
            return False
        if self.statuses and row.status not in self.statuses:
            return False
        if row.parent is not None and not self.include_children:
            return False
        if any(row.tags.get(key) != value for key, value in self.tags.items()):
            return False
        return all(_same(row.parameters.get(name), value) for name, value in self.parameters.items())

    def apply(self, rows: Iterable[RunRow]) -> list[RunRow]:
        """``rows`` filtered, ordered (newest first when no order is asked) and cut to ``max_results``."""
        kept = [row for row in rows if self.matches(row)]
        terms = self.order_by or (Order("column", "created_time", descending=True),)
        for term in reversed(terms):  # sorted last by the first term: Python's sort is stable
            present = [row for row in kept if term.key(row) is not None]
            missing = [row for row in kept if term.key(row) is None]
            present.sort(key=term.key, reverse=term.descending)
            kept = present + missing  # a run without the value goes last, either way
        return kept if self.max_results is None else kept[:self.max_results]


def _same(have: Any, want: Any) -> bool:
    if have is None:
        return False
    if isinstance(want, (int, float)) and isinstance(have, (int, float)):
        return math.isclose(float(have), float(want), rel_tol=1e-12, abs_tol=0.0)
    return str(have) == str(want)


def check(experiment_names: Any = None, tags: Any = None, status: Any = None, parameters: Any = None,
          order_by: Any = None, max_results: Any = None, include_children: bool = False) -> Query:
    """The checked query of ``search_runs``.

    Raises:
        TypeError, ValueError: an argument breaks its rule (the message names it).
    """
    names = None
    if experiment_names is not None:
        if isinstance(experiment_names, str):
            experiment_names = [experiment_names]
        names = tuple(check_name("experiment_names", name) for name in experiment_names)
    statuses: tuple[str, ...] = ()
    if status is not None:
        statuses = (status,) if isinstance(status, str) else tuple(status)
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise ValueError(f"status must be one of {', '.join(STATUSES)} (or a list of them); got {unknown[0]!r}")
    wanted_parameters: dict[str, str | int | float] = {}
    if parameters is not None:
        if not isinstance(parameters, Mapping):
            raise TypeError(f"parameters must be a mapping of names to values; got {type(parameters).__name__}")
        for name, value in parameters.items():
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise TypeError(f"parameters[{name!r}] must be a str, int or float; got {type(value).__name__}")
            wanted_parameters[str(name)] = value
    if max_results is not None and (type(max_results) is not int or max_results < 1):
        raise ValueError(f"max_results must be a positive int or None; got {max_results!r}")
    return Query(names, as_dict(check_tags(tags)) if tags is not None else {}, statuses, wanted_parameters,
                 tuple(_order(term) for term in _terms(order_by)), max_results, bool(include_children))


def _terms(order_by: Any) -> Sequence[str]:
    if order_by is None:
        return ()
    terms = [order_by] if isinstance(order_by, str) else list(order_by)
    if not all(isinstance(term, str) for term in terms):
        raise TypeError("order_by must be a str or a list of str, such as 'metric.loss.last ASC'")
    return terms


def _order(term: str) -> Order:
    words = term.split()
    direction = words[1].upper() if len(words) == 2 else "ASC"
    if not 1 <= len(words) <= 2 or direction not in ("ASC", "DESC"):
        raise ValueError(f"order_by term {term!r} must be '<field> [ASC|DESC]'")
    field, descending = words[0], direction == "DESC"
    head, _, rest = field.partition(".")
    if head == "metric":
        name, _, stat = rest.rpartition(".")
        if not name or stat not in STATS:
            raise ValueError(f"order_by term {term!r}: a metric is 'metric.<name>.<stat>', the stat one of "
                             f"{', '.join(STATS)}")
        return Order("metric", name, stat, descending)
    if head in ("param", "tag") and rest:
        return Order(head, rest, descending=descending)
    if field in _COLUMNS:
        return Order("column", field, descending=descending)
    raise ValueError(f"order_by term {term!r} must name metric.<name>.<stat>, param.<name>, tag.<key> or one of "
                     f"{', '.join(_COLUMNS)}")
