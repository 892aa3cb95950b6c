"""Artifacts · the code behind ``sagerun table`` and ``sagerun chart``, and the kinds ``sagerun show`` lists.

* ``table_preview(store, RUN, NAME, rows)``: the first rows of a table a run logged.
* ``chart_png(store, RUN, NAME, out)``: a confusion matrix, ROC or precision-recall chart drawn to
  a PNG with matplotlib (the optional extra ``sagerun[charts]``), for people who would rather look
  than read.
* ``artifact_kinds(store, RUN)``: what each artifact of a run is (a chart, a table, a file, a value).

Runs are found in the local store as every other command finds them (``EXPERIMENT/RUN``, a run
name or a trial component name); documents are read from the store's folder or from S3.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from typing import Any, BinaryIO

import orjson

from .._model.errors import SagerunError
from .._model.session import Session
from .._model.records import Artifact
from ..store import opened, queries
from ..store.records import load_run
from . import charts, tables
from .documents import ArtifactUnreadableError, local_file, open_lines, read_document, s3_location

DEFAULT_ROWS = 10
_TYPE = re.compile(rb'\{\s*"type"\s*:\s*"(\w+)"')
_ROW_COUNT = re.compile(rb'"rowCount"\s*:\s*(\d+)')
DEFAULT_SIZE = (800, 600)


class ArtifactNotFoundError(SagerunError, LookupError):
    """The run has no artifact of the name given."""


class ChartsUnavailableError(SagerunError):
    """matplotlib is not installed."""


@dataclasses.dataclass(frozen=True)
class FoundArtifact:
    """An artifact of a run of the local store."""

    run: queries.RunInfo
    name: str
    artifact: Artifact
    is_output: bool

    @property
    def where(self) -> str:
        return f"artifact {self.name!r} of run {self.run.ref}"


def find_artifact(store_path: str, run_ref: str, name: str) -> FoundArtifact:
    """The artifact ``name`` of run ``run_ref`` (outputs first, then inputs).

    Raises:
        NoStoreError, RunNotFoundError, AmbiguousRunError: as ``queries.find_run``.
        ArtifactNotFoundError: the run has no artifact of that name (the message lists those it has).
    """
    with opened(store_path) as conn:
        info = queries.find_run(conn, run_ref)
        record = load_run(conn, info.id)
    for is_output, group in ((True, record.output_artifacts), (False, record.input_artifacts)):
        if name in group:
            return FoundArtifact(info, name, group[name], is_output)
    names = sorted({*record.output_artifacts, *record.input_artifacts})
    have = ", ".join(repr(n) for n in names) if names else "none"
    raise ArtifactNotFoundError(f"run {info.ref} has no artifact named {name!r}; its artifacts: {have} "
                                f"(`sagerun show {info.ref}` lists them)")


def table_preview(store_path: str, run_ref: str, name: str, rows: int = DEFAULT_ROWS,
                  session: Session | None = None, offset: int = 0) -> tuple[FoundArtifact, tables.TablePreview]:
    """``rows`` rows of table ``name`` of run ``run_ref`` from row ``offset`` (the first ones by
    default); no line past them is read.

    Raises:
        ValueError: ``rows`` or ``offset`` is negative, or the artifact is not a table.
        ArtifactNotFoundError, RunNotFoundError, AmbiguousRunError, NoStoreError: see ``find_artifact``.
        ArtifactUnreadableError: its document cannot be read.
    """
    if rows < 0 or offset < 0:
        raise ValueError(f"rows and offset must be 0 or more; got {rows} and {offset}")
    found = find_artifact(store_path, run_ref, name)
    return found, table_at(found.artifact.value, found.where, rows, offset, store_path,
                           found.run.trial_component_name, session)


def table_at(uri: str, where: str, rows: int, offset: int = 0, store_path: str = "", trial_component_name: str = "",
             session: Session | None = None) -> tables.TablePreview:
    """``rows`` rows from row ``offset`` of the table document at ``uri`` (``file://`` in the
    store, or ``s3://``); the head line, those rows and no more are fetched.

    Raises:
        ValueError: the document is not a table (``where`` names it).
        ArtifactUnreadableError: it cannot be read.
    """
    with open_lines(uri, store_path, trial_component_name, session=session, max_lines=offset + rows + 2) as lines:
        return tables.read_preview(lines, rows, where, offset)


def chart_document(store_path: str, run_ref: str, name: str,
                   session: Session | None = None) -> tuple[FoundArtifact, dict[str, Any]]:
    """The chart document ``name`` of run ``run_ref``.

    Raises:
        ValueError: the artifact is not a chart document.
        ArtifactNotFoundError, RunNotFoundError, AmbiguousRunError, NoStoreError, ArtifactUnreadableError.
    """
    found = find_artifact(store_path, run_ref, name)
    return found, chart_at(found.artifact.value, found.where, store_path, found.run.trial_component_name, session)


def chart_at(uri: str, where: str, store_path: str = "", trial_component_name: str = "",
             session: Session | None = None) -> dict[str, Any]:
    """The chart document at ``uri`` (``file://`` in the store, or ``s3://``).

    Raises:
        ValueError: it is not a chart document (``where`` names it).
        ArtifactUnreadableError: it cannot be read.
    """
    raw = read_document(uri, store_path, trial_component_name, session=session)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValueError(f"{where} is not a JSON chart document") from None
    return charts.check_chart(document, where)


def chart_png(store_path: str, run_ref: str, name: str, out: str, *, width: int = DEFAULT_SIZE[0],
              height: int = DEFAULT_SIZE[1], dpi: int = 100, session: Session | None = None) -> dict[str, Any]:
    """Draw chart ``name`` of run ``run_ref`` to the PNG file ``out``, ``width`` x ``height`` pixels;
    return what was drawn (``run``, ``artifact``, ``type``, ``title``, ``out``, ``width``, ``height``).

    Raises:
        ChartsUnavailableError: matplotlib is not installed (``pip install 'sagerun[charts]'``).
        ValueError: the artifact is not a chart, or a size is not positive.
        ArtifactNotFoundError, RunNotFoundError, AmbiguousRunError, NoStoreError, ArtifactUnreadableError.
        OSError: ``out`` cannot be written.
    """
    _check_matplotlib()
    found, document = chart_document(store_path, run_ref, name, session=session)
    render_chart(document, out, width=width, height=height, dpi=dpi)
    return {"run": found.run.ref, "artifact": name, "type": document["type"], "title": document.get("title"),
            "out": os.path.abspath(out), "width": width, "height": height}


def chart_image(document: dict[str, Any]) -> bytes | None:
    """The chart drawn as PNG bytes at the default size, or ``None`` when matplotlib is not installed.

    Raises:
        ValueError: ``document`` is not a chart.
    """
    try:
        _check_matplotlib()
    except ChartsUnavailableError:
        return None
    out = io.BytesIO()
    render_chart(document, out)
    return out.getvalue()


def render_chart(document: dict[str, Any], out: str | BinaryIO, *, width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1],
                 dpi: int = 100) -> None:
    """Draw a chart document to the PNG file ``out`` (a path or a binary file) of exactly ``width`` x ``height`` pixels.

    A Figure is made directly, without pyplot: no global state, no GUI backend, safe in threads.

    Raises:
        ChartsUnavailableError: matplotlib is not installed.
        ValueError: ``document`` is not a chart, or a size is not positive.
        OSError: ``out`` cannot be written.
    """
    _check_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    document = charts.check_chart(document, "the document")
    if width <= 0 or height <= 0 or dpi <= 0:
        raise ValueError(f"width, height and dpi must be positive; got {width}x{height} at {dpi} dpi")
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    kind = document["type"]
    if kind == charts.CONFUSION_MATRIX:
        _confusion_matrix(figure, axes, document)
    elif kind == charts.ROC_CURVE:
        _curve(axes, document["falsePositiveRate"], document["truePositiveRate"], "False positive rate",
               "True positive rate", f"AUC = {_number(document.get('areaUnderCurve'))}", diagonal=True)
    else:
        _curve(axes, document["recall"], document["precision"], "Recall", "Precision",
               f"AP = {_number(document.get('averagePrecisionScore'))}", diagonal=False)
        no_skill = document.get("noSkill")
        if isinstance(no_skill, (int, float)):
            axes.axhline(no_skill, linestyle="--", color="grey", label=f"no skill = {_number(no_skill)}")
            axes.legend(loc="lower left")
    axes.set_title(document.get("title") or kind)
    figure.tight_layout()
    # No bbox_inches="tight": it would crop, and the image would not be the size asked for.
    figure.savefig(out, format="png", dpi=dpi)


def _confusion_matrix(figure: Any, axes: Any, document: dict[str, Any]) -> None:
    matrix = document["confusionMatrix"]
    size = len(matrix)
    labels = document.get("labels") or list(range(size))
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    top = max((max(row) for row in matrix if row), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            # Dark cells get white text: the count must stay readable on the colour it sits on.
            axes.text(j, i, str(count), ha="center", va="center", color="white" if count > top / 2 else "black")
    axes.set_xticks(range(size), [str(label) for label in labels])
    axes.set_yticks(range(size), [str(label) for label in labels])
    axes.set_xlabel("Predicted label")
    axes.set_ylabel("True label")


def _curve(axes: Any, x: list[float], y: list[float], x_label: str, y_label: str, label: str, *,
           diagonal: bool) -> None:
    axes.plot(x, y, label=label, linewidth=2)
    if diagonal:
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.05)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.legend(loc="lower right" if diagonal else "lower left")
    axes.grid(alpha=0.3)


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "n/a"


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ChartsUnavailableError("drawing charts needs matplotlib: pip install 'sagerun[charts]'") from None


def artifact_kinds(store_path: str, trial_component_name: str, artifacts: dict[str, Artifact]) -> dict[str, str]:
    """What each artifact is, for ``sagerun show``: the chart's type, ``Table (N rows)``, ``file``
    (a file in the local store), ``S3 object``, or ``value``.

    Only the first line of a local JSON document is read (where a document written here keeps its
    type); S3 objects are not read at all, so listing costs no request.
    """
    kinds = {}
    for name, artifact in artifacts.items():
        kinds[name] = _kind(store_path, trial_component_name, artifact)
    return kinds


def _kind(store_path: str, trial_component_name: str, artifact: Artifact) -> str:
    if s3_location(artifact.value) is not None:
        return "S3 object"
    path = local_file(artifact.value, store_path, trial_component_name)
    if path is None:
        return "value"
    if artifact.media_type != charts.MEDIA_TYPE:
        return "file"
    try:
        with open(path, "rb") as file:
            head = file.readline(1 << 16).rstrip()
    except OSError:
        return "file (missing)"
    return head_kind(head)


def document_kind(uri: str, session: Session | None = None) -> str:
    """What the JSON document at ``uri`` (``s3://`` too) is, from its first line alone, as
    ``artifact_kinds`` says it; ``S3 object`` or ``file`` when it cannot be read.
    """
    try:
        with open_lines(uri, "", "", session=session, max_lines=1) as lines:
            return head_kind(next(iter(lines), b"")[: 1 << 16])
    except ArtifactUnreadableError:
        return "S3 object" if s3_location(uri) is not None else "file"


def head_kind(head: bytes) -> str:
    """A document's kind from its first line: ``Table (N rows)``, a chart's type, or ``file``."""
    # Documents written here start with their type; a table's head line holds its row count.
    kind_match = _TYPE.match(head)
    kind = kind_match.group(1).decode() if kind_match else None
    if kind == tables.TABLE:
        count = _ROW_COUNT.search(head)
        return f"Table ({int(count.group(1)):,} rows)" if count else "Table"
    return kind if kind in charts.CHART_TYPES else "file"


__all__ = ["ArtifactNotFoundError", "ArtifactUnreadableError", "ChartsUnavailableError", "FoundArtifact",
           "artifact_kinds", "chart_at", "chart_document", "chart_image", "chart_png", "document_kind", "find_artifact",
           "head_kind", "render_chart", "table_at", "table_preview"]
