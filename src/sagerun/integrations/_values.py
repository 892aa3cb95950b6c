"""Integrations · what a framework hands a callback, reduced to what a run takes: numbers and parameters.

A metric value is logged only if it is one number: a float or int, a numpy scalar, or an array or
tensor of one element. Anything else (a string, a dict, a list) is skipped and counted, never
raised into the training loop. Parameters are flattened with ``/`` and reduced to what SageMaker
stores, a str, int or float, with over-long strings cut to its limit (and counted).
"""

from __future__ import annotations

import enum
import math
import numbers
import re
from typing import Any, Mapping

from .._model.checks import MAX_PARAMETER_NAME, MAX_PARAMETER_STRING

_SEPARATOR = "/"
#: parameters never logged, whatever their value: a framework's arguments can hold a credential
_SECRET = re.compile(r"^(?:token|(?:.*_)?(?:password|passwd|secret|secret_key|api_key|apikey|access_key|"
                     r"access_key_id|secret_access_key|auth_token|access_token|session_token|hub_token|"
                     r"credentials?))$", re.IGNORECASE)


def number(value: Any) -> float | None:
    """``value`` as a float if it is one number (a one-element array or tensor included), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    size = getattr(value, "size", None)
    if callable(size):  # a torch tensor: size() is its shape
        size = value.numel() if hasattr(value, "numel") else None
    if size == 1 and hasattr(value, "item"):
        item = value.item()
        if isinstance(item, numbers.Real) and not isinstance(item, bool):
            return float(item)
    return None


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``values`` with nested mappings spread into ``outer/inner`` keys, under ``prefix``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + _SEPARATOR))
        else:
            flat[name] = value
    return flat


def parameters(values: Mapping[str, Any], prefix: str = "") -> tuple[dict[str, str | int | float], int]:
    """``values`` flattened under ``prefix``, each a str, int or float SageMaker takes, and how many
    were cut to its limits or left out (a name over its limit, or one that names a credential)."""
    reduced: dict[str, str | int | float] = {}
    cut = 0
    for name, value in flatten(values, prefix).items():
        if len(name) > MAX_PARAMETER_NAME or _SECRET.search(name.rsplit(_SEPARATOR, 1)[-1]):
            cut += 1
            continue
        reduced[name] = value = _parameter(value)
        if isinstance(value, str) and len(value) > MAX_PARAMETER_STRING:
            reduced[name] = value[:MAX_PARAMETER_STRING]
            cut += 1
    return reduced, cut


def _parameter(value: Any) -> str | int | float:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, numbers.Real):
        try:
            as_float = float(value)
        except OverflowError:  # an int beyond a double: SageMaker keeps numbers as doubles
            return str(value)
        if not math.isfinite(as_float):
            return str(as_float)
        return int(value) if isinstance(value, numbers.Integral) else as_float
    return value if isinstance(value, str) else str(value)
