"""Artifacts · evaluation charts as the JSON documents SageMaker Studio renders.

The documents have the ``type``, ``version`` and field names of the SageMaker SDK v2
(``sagemaker.experiments.Run.log_confusion_matrix``, ``log_roc_curve``, ``log_precision_recall``):

* ``{"type": "ConfusionMatrix", "version": 0, "title", "confusionMatrix": [[int]]}``, plus
  ``"labels"``: the class of each row and column, in scikit-learn's order. The SDK leaves them out;
  without them a matrix of string classes cannot be read, and renderers ignore fields they do not know.
* ``{"type": "ROCCurve", "version": 0, "title", "falsePositiveRate", "truePositiveRate", "areaUnderCurve"}``
* ``{"type": "PrecisionRecallCurve", "version": 0, "title", "precision", "recall",
  "averagePrecisionScore", "noSkill"}``

The numbers are scikit-learn's, computed in the caller's worker thread (never on the event loop,
where a large evaluation set would hold up metric delivery). scikit-learn is imported on first use:
it costs most of a second.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import numpy as np
import orjson

CONFUSION_MATRIX = "ConfusionMatrix"
ROC_CURVE = "ROCCurve"
PRECISION_RECALL_CURVE = "PrecisionRecallCurve"
CHART_TYPES = (CONFUSION_MATRIX, ROC_CURVE, PRECISION_RECALL_CURVE)
MEDIA_TYPE = "application/json"


def chart_name(chart_type: str, title: object) -> str:
    """The artifact name of a chart: its title, else ``<type>-<time>-<random>`` (unique, so that two
    untitled charts never overwrite each other; the SageMaker SDK meant to do this but drops the name).

    Raises:
        TypeError: ``title`` is neither a str nor ``None``.
    """
    if title is None:
        return f"{chart_type}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"
    if not isinstance(title, str):
        raise TypeError(f"title must be a str or None; got {type(title).__name__}")
    return title


def same_length(first: Any, first_name: str, second: Any, second_name: str) -> tuple[np.ndarray, np.ndarray]:
    """``first`` and ``second`` as arrays, checked to hold the same number of values.

    Raises:
        TypeError: one of them is not a sequence or array.
        ValueError: they differ in length, or are empty (the message names both arguments).
    """
    arrays = []
    for value, name in ((first, first_name), (second, second_name)):
        try:
            array = np.asarray(value)
        except Exception as exc:
            raise TypeError(f"{name} must be a list or array; got {type(value).__name__}") from exc
        if array.ndim == 0:
            raise TypeError(f"{name} must be a list or array; got a single {type(value).__name__}")
        arrays.append(array)
    if len(arrays[0]) != len(arrays[1]):
        raise ValueError(f"{first_name} has {len(arrays[0])} values but {second_name} has {len(arrays[1])}: "
                         "they must be the same length, one entry per example")
    if not len(arrays[0]):
        raise ValueError(f"{first_name} and {second_name} are empty: there is nothing to chart")
    return arrays[0], arrays[1]


def confusion_matrix_document(y_true: Any, y_pred: Any, title: str | None = None) -> dict[str, Any]:
    """The ConfusionMatrix document of ``y_true`` against ``y_pred``: row ``i`` counts the examples of
    class ``labels[i]``, column ``j`` those predicted as ``labels[j]``.

    Raises:
        TypeError, ValueError: the inputs are not two label sequences of the same length.
    """
    from sklearn.metrics import confusion_matrix
    from sklearn.utils.multiclass import unique_labels

    truth, predicted = same_length(y_true, "y_true", y_pred, "y_pred")
    labels = unique_labels(truth, predicted)
    matrix = confusion_matrix(truth, predicted, labels=labels)
    return {"type": CONFUSION_MATRIX, "version": 0, "title": title, "confusionMatrix": matrix.tolist(),
            "labels": labels.tolist()}


def roc_curve_document(y_true: Any, y_score: Any, title: str | None = None) -> dict[str, Any]:
    """The ROCCurve document of binary ``y_true`` against scores ``y_score`` (higher: more positive).

    Raises:
        TypeError, ValueError: the inputs differ in length, or scikit-learn refuses them (labels
            that are not binary, NaN scores).
    """
    from sklearn.metrics import auc, roc_curve

    truth, score = same_length(y_true, "y_true", y_score, "y_score")
    fpr, tpr, _ = roc_curve(truth, score)
    return {"type": ROC_CURVE, "version": 0, "title": title, "falsePositiveRate": fpr.tolist(),
            "truePositiveRate": tpr.tolist(), "areaUnderCurve": float(auc(fpr, tpr))}


def precision_recall_document(y_true: Any, predicted_probabilities: Any, positive_label: Any = None,
                              title: str | None = None, no_skill: float | None = None) -> dict[str, Any]:
    """The PrecisionRecallCurve document of ``y_true`` against the probabilities of the positive class.

    ``positive_label`` names the positive class when the labels are not 0/1 or -1/1; ``no_skill`` is
    the precision of a classifier that cannot discriminate, drawn as a reference line.

    Raises:
        TypeError, ValueError: the inputs differ in length, or scikit-learn refuses them.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    truth, probabilities = same_length(y_true, "y_true", predicted_probabilities, "predicted_probabilities")
    kwargs: dict[str, Any] = {} if positive_label is None else {"pos_label": positive_label}
    precision, recall, _ = precision_recall_curve(truth, probabilities, **kwargs)
    average = average_precision_score(truth, probabilities, average="micro", **kwargs)
    return {"type": PRECISION_RECALL_CURVE, "version": 0, "title": title, "precision": precision.tolist(),
            "recall": recall.tolist(), "averagePrecisionScore": float(average), "noSkill": no_skill}


def dumps(document: dict[str, Any]) -> bytes:
    """A chart document as JSON bytes; NaN (an AUC of one class only) becomes ``null``."""
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def check_chart(document: object, where: str) -> dict[str, Any]:
    """``document`` if it is a chart this module writes, else ``ValueError`` saying what it is.

    Raises:
        ValueError: ``document`` is not a ConfusionMatrix, ROCCurve or PrecisionRecallCurve document
            with its fields (``where`` says which artifact, for the message).
    """
    fields = {CONFUSION_MATRIX: ("confusionMatrix",), ROC_CURVE: ("falsePositiveRate", "truePositiveRate"),
              PRECISION_RECALL_CURVE: ("precision", "recall")}
    kind = document.get("type") if isinstance(document, dict) else None
    if kind not in fields:
        raise ValueError(f"{where} is not a chart (ConfusionMatrix, ROCCurve or PrecisionRecallCurve); "
                         f"its type is {kind!r}")
    assert isinstance(document, dict)
    missing = [name for name in fields[kind] if not isinstance(document.get(name), list)]
    if missing:
        raise ValueError(f"{where} is a {kind} document without {', '.join(missing)}")
    return document
