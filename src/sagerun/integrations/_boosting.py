"""Integrations · what the two boosting libraries share: their resolved parameters and feature importance as a table."""

from __future__ import annotations

from typing import Any, Mapping


def training_parameters(config: Mapping[str, Any]) -> dict[str, Any]:
    """The leaves of every ``*_param`` section of XGBoost's saved configuration, by their own names
    (``eta``, ``max_depth``, ``objective``): the parameters as the booster resolved them."""
    found: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            if key.endswith("_param"):
                for name, leaf in value.items():
                    if not isinstance(leaf, Mapping):
                        found.setdefault(name, leaf)
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
