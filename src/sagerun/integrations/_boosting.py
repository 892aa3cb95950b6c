"""Integrations · what the two boosting libraries share: resolved parameters, feature importance as a table."""

from __future__ import annotations

from typing import Any, Mapping


def training_parameters(config: Mapping[str, Any]) -> dict[str, Any]:
    """The leaves of every ``*_param`` section of XGBoost's saved configuration, by their own names
    (``learning_rate``, ``max_depth``, ``objective``), numbers as numbers: the parameters as the
    booster resolved them."""
    found: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            if key.endswith("_param"):
                for name, leaf in value.items():
                    if not isinstance(leaf, Mapping):
                        found.setdefault(name, _number(leaf))
            for name, leaf in training_parameters(value).items():
                found.setdefault(name, leaf)
    return found


def importance_rows(scores: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """One row per feature, a column per kind of importance, most important first by the first kind."""
    kinds = list(scores)
    features = sorted({feature for values in scores.values() for feature in values},
                      key=lambda feature: -scores[kinds[0]].get(feature, 0.0) if kinds else 0.0)
    return [{"feature": feature, **{kind: float(scores[kind].get(feature, 0.0)) for kind in kinds}}
            for feature in features]


def _number(text: Any) -> Any:
    """XGBoost's configuration keeps every value as text: ``"2"`` is 2, ``"0.300000012"`` 0.300000012."""
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text
