"""Artifacts · result tables (``log_table``) as JSON documents that can be previewed without reading them whole.

A table document is ``{"type": "Table", "version": 0, "title", "columns": [{"name", "type"}],
"rowCount", "rows": [[cell, ...], ...]}``. Column types are those of the older SageMaker
Experiments tracker's tables (``number``, ``boolean``, ``datetime``, ``string``). Unlike that
tracker's column-wise ``data``, the rows are kept row by row, and the document is laid out one row
a line::

    {"type":"Table",...,"rowCount":3,"rows":[
    [1,"a"],
    [2,"b"],
    [3,"c"]
    ]}

so it is still one JSON value, and a preview of the first rows reads the first lines of the object
and stops, however large the table (``read_preview``).

For an MLflow run the document is MLflow's own table JSON instead (what ``mlflow.log_table``
writes: pandas' ``orient="split"`` without the index, ``{"columns": [name, ...], "data": [[cell,
...], ...]}``), so that MLflow's UI and ``load_table`` read it, laid out one row a line the same way.

Input: a pandas DataFrame (pandas is never imported here: a DataFrame can only exist if the caller
imported pandas), a mapping of column names to equal-length sequences, or a sequence of row
mappings (columns in order of first appearance, missing cells ``null``).
"""

from __future__ import annotations

import dataclasses
import datetime
import numbers
import sys
from typing import Any, Iterable, Iterator, Mapping, Sequence, cast

import numpy as np
import orjson

TABLE = "Table"
MEDIA_TYPE = "application/json"
_HEAD_END = b'"rows":['
_MLFLOW_HEAD_END = b'"data":['
_END = b"]}"
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


@dataclasses.dataclass
class TablePreview:
    """The first rows of a table document, and how many it holds in all."""

    title: str | None
    columns: list[dict[str, str]]
    rows: list[list[Any]]
    row_count: int

    @property
    def column_names(self) -> list[str]:
        return [str(column.get("name")) for column in self.columns]


def table_document(title: str, data: Any, *, mlflow: bool = False) -> bytes:
    """``data`` as a table document (bytes), laid out one row a line; MLflow's table JSON when
    ``mlflow``.

    Raises:
        TypeError: ``data`` is not a DataFrame, a mapping of columns or a sequence of row mappings.
        ValueError: the columns differ in length, or there is no column.
    """
    names, columns, types = _columns(data)
    if not names:
        raise ValueError(f"table {title!r} has no columns: give a DataFrame, a dict of columns or a list of rows")
    count = len(columns[0])
    if mlflow:
        head = orjson.dumps({"columns": names})[:-1] + b"," + _MLFLOW_HEAD_END
    else:
        head = orjson.dumps({"type": TABLE, "version": 0, "title": title,
                             "columns": [{"name": n, "type": t} for n, t in zip(names, types)],
                             "rowCount": count})[:-1] + b"," + _HEAD_END
    # One dumps a row: the newline between rows is what lets a preview stop early.
    rows = b",\n".join(orjson.dumps(row, default=_cell, option=_OPTIONS) for row in zip(*columns))
    return b"\n".join((head, rows, _END)) if count else head + b"\n" + _END


def read_preview(lines: Iterable[bytes], rows: int, where: str, offset: int = 0) -> TablePreview:
    """``rows`` rows of the table document whose lines ``lines`` yields, from row ``offset``; reads
    no further lines than that, and parses none before ``offset``. A table written in one piece
    (another tool's) is read whole; the older tracker's column-wise ``fields``/``data`` form is
    read too.

    Raises:
        ValueError: the document is not a table (``where`` names it in the message).
    """
    iterator = iter(lines)
    first = next(iterator, b"").rstrip()
    if first.endswith(_HEAD_END):
        head = _loads(first + _END, where)
        found: list[list[Any]] = []
        skipped = 0
        for line in iterator:
            line = line.strip()
            if line == _END or len(found) >= rows:
                break
            if not line:
                continue
            if skipped < offset:  # a row line is one row: it need not be parsed to be passed
                skipped += 1
                continue
            found.append(_loads(line.rstrip(b","), where))
        return _preview(head, found, where)
    document = _loads(first + b"".join(iterator), where)
    return _preview(document, _rows_of(document, where)[offset:offset + rows], where)


def _preview(document: Any, rows: list[list[Any]], where: str) -> TablePreview:
    if not isinstance(document, dict) or document.get("type") != TABLE:
        kind = document.get("type") if isinstance(document, dict) else type(document).__name__
        raise ValueError(f"{where} is not a table document; its type is {kind!r}")
    columns = document.get("columns") or document.get("fields") or []
    total = document.get("rowCount")
    if not isinstance(total, int):
        total = len(_rows_of(document, where))
    return TablePreview(document.get("title"), [dict(c) for c in columns], rows, total)


def _rows_of(document: Any, where: str) -> list[list[Any]]:
    if not isinstance(document, dict):
        raise ValueError(f"{where} is not a table document")
    if isinstance(document.get("rows"), list):
        return cast("list[list[Any]]", document["rows"])
    data = document.get("data")
    if isinstance(data, dict):  # the older tracker's columns: {"x": [1, 2], "y": [3, 4]}
        return [list(row) for row in zip(*data.values())]
    return []


def _loads(raw: bytes, where: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{where} is not a JSON table document: {exc}") from None


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines (without their ends) from a stream of byte chunks, for ``read_preview``."""
    parts: list[bytes] = []  # the line in progress, in pieces: a long line is joined once, not per chunk
    for chunk in chunks:
        *complete, rest = chunk.split(b"\n")
        for piece in complete:
            parts.append(piece)
            yield b"".join(parts)
            parts = []
        if rest:
            parts.append(rest)
    if parts:
        yield b"".join(parts)


# -- from what the caller gives to columns ----------------------------------------------------------


def _columns(data: Any) -> tuple[list[str], list[list[Any]], list[str]]:
    """Names, cells (column by column) and types of ``data``."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(data, pandas.DataFrame):
        names = [str(name) for name in data.columns]
        columns = [data.iloc[:, i].tolist() for i in range(data.shape[1])]
        return names, columns, [_dtype_type(dtype) for dtype in data.dtypes]
    if isinstance(data, Mapping):
        names = [_column_name(name) for name in data]
        columns = [_column(name, values) for name, values in zip(names, data.values())]
        lengths = {len(c) for c in columns}
        if len(lengths) > 1:
            sizes = ", ".join(f"{n!r}: {len(c)}" for n, c in zip(names, columns))
            raise ValueError(f"table columns must be the same length; got {sizes}")
        return names, columns, [_value_type(c) for c in columns]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        for n, row in enumerate(data):
            if not isinstance(row, Mapping):
                raise TypeError(f"a table given as a list must be a list of row dicts; row {n} is a "
                                f"{type(row).__name__}")
        keys: dict[Any, None] = {}
        for row in data:
            keys.update(dict.fromkeys(row))
        names = [_column_name(key) for key in keys]
        columns = [[row.get(key) for row in data] for key in keys]
        return names, columns, [_value_type(c) for c in columns]
    raise TypeError("data must be a pandas DataFrame, a dict of columns ({'user': [...], 'score': [...]}) or a "
                    f"list of row dicts; got {type(data).__name__}")


def _column_name(name: object) -> str:
    if not isinstance(name, (str, int)) or isinstance(name, bool):
        raise TypeError(f"table column names must be str; got {name!r}")
    return str(name)


def _column(name: str, values: object) -> list[Any]:
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"table column {name!r} must be 1-d; got shape {values.shape}")
        return cast("list[Any]", values.tolist())
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise TypeError(f"table column {name!r} must be a list or array of cells; got {type(values).__name__}")
    tolist = getattr(values, "tolist", None)  # a pandas Series: its cells as Python values
    return list(tolist() if callable(tolist) else values)


def _value_type(cells: list[Any]) -> str:
    present = [c for c in cells if c is not None]
    if not present:
        return "string"
    if all(isinstance(c, (bool, np.bool_)) for c in present):
        return "boolean"
    if all(isinstance(c, (numbers.Real, np.number)) and not isinstance(c, (bool, np.bool_)) for c in present):
        return "number"
    if all(isinstance(c, (datetime.date, np.datetime64)) for c in present):
        return "datetime"
    return "string"


def _dtype_type(dtype: Any) -> str:
    # The older tracker's mapping of pandas dtypes to the column types Studio knows.
    name = str(dtype).lower()
    for prefix, kind in (("datetime", "datetime"), ("float", "number"), ("int", "number"), ("uint", "number"),
                         ("bool", "boolean")):
        if name.startswith(prefix):
            return kind
    return "string"


def _cell(value: Any) -> Any:
    """A cell orjson does not know: pandas' missing values as ``null``, times in ISO 8601, else text."""
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        try:
            missing = pandas.isna(value)
        except (TypeError, ValueError):
            missing = False
        if isinstance(missing, (bool, np.bool_)) and missing:
            return None
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
