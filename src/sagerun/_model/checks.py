"""Model · checks of what the caller logs, made at the call so that errors point at the caller's line."""

from __future__ import annotations

import datetime
import math
import numbers
import operator
import time
from typing import Any

import numpy as np

_MAX_METRIC_NAME = 255
MAX_STEP = 2**31 - 1  # the API's Step is a 32-bit integer
_PAST_WINDOW = 14 * 24 * 3600.0
_FUTURE_WINDOW = 2 * 3600.0
MAX_PARAMETER_NAME = 256
MAX_PARAMETER_STRING = 2500
MAX_STATUS_MESSAGE = 1024
_REAL = (numbers.Real, np.integer, np.floating)


def check_metric_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str; got {type(name).__name__}")
    if not 0 < len(name) <= _MAX_METRIC_NAME:
        raise ValueError(f"name must be 1 to {_MAX_METRIC_NAME} characters; got {len(name)}")
    if not name.isprintable():
        raise ValueError(f"name must hold no control characters; got {name!r}")
    return name


def metric_value(value: object) -> float:
    """``value`` as a float; NaN and infinities come back as they are, for the caller to count."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _REAL):
        raise TypeError(f"value must be a real number (int, float or a numpy number); got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"value must fit in a double; got an int of {value.bit_length()} bits") from None


def check_step(step: object) -> int:
    if isinstance(step, bool):
        raise TypeError("step must be an int >= 0; got bool")
    try:
        index = operator.index(step)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"step must be an int >= 0; got {type(step).__name__}") from None
    if not 0 <= index <= MAX_STEP:
        raise ValueError(f"step must be between 0 and {MAX_STEP}; got {index}")
    return index


def epoch_seconds(timestamp: object, argument: str = "timestamp") -> float:
    """Epoch seconds from a datetime (naive means local time, as in the SageMaker SDK) or a number,
    within the window SageMaker accepts: 14 days back to 2 hours ahead."""
    if isinstance(timestamp, datetime.datetime):
        seconds = timestamp.timestamp()
    elif isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
        seconds = float(timestamp)
    else:
        raise TypeError(f"{argument} must be a datetime or epoch seconds; got {type(timestamp).__name__}")
    now = time.time()
    if not now - _PAST_WINDOW <= seconds <= now + _FUTURE_WINDOW:
        raise ValueError(
            f"{argument} must be within the last 14 days and at most 2 hours ahead (SageMaker refuses "
            f"others); got {datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat() if math.isfinite(seconds) else seconds}"
        )
    return seconds


def check_parameter(name: object, value: object) -> str | float | int:
    if not isinstance(name, str) or not name:
        raise TypeError(f"parameter name must be a non-empty str; got {name!r}")
    if len(name) > MAX_PARAMETER_NAME:
        raise ValueError(f"parameter name must be at most {MAX_PARAMETER_NAME} characters; got {len(name)}")
    if isinstance(value, str):
        if len(value) > MAX_PARAMETER_STRING:
            raise ValueError(f"parameter {name!r} must be a string of at most {MAX_PARAMETER_STRING} characters "
                             f"(SageMaker's limit); got {len(value)}")
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        number = int(value)
        try:
            float(number)  # SageMaker keeps numbers as doubles
        except OverflowError:
            raise ValueError(f"parameter {name!r} must fit in a double; got an int of {number.bit_length()} bits") from None
        return number
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"parameter {name!r} must be a str, int or float; got {type(value).__name__}")


def metric_values(name: str, raw: Any) -> np.ndarray:
    try:
        values = np.asarray(raw)
    except Exception as exc:
        raise TypeError(f"metric {name!r}: values must be numbers or a 1-d array of numbers") from exc
    if values.dtype.kind not in "iuf":
        raise TypeError(f"metric {name!r}: values must be real numbers; got dtype {values.dtype}")
    if values.ndim > 1:
        raise ValueError(f"metric {name!r}: values must be a number or a 1-d array; got shape {values.shape}")
    return values.astype(np.float64, copy=False).reshape(-1)


def metric_steps(step: Any) -> np.ndarray:
    steps = np.asarray(step)
    if steps.dtype.kind not in "iu" or steps.ndim > 1:
        raise TypeError(f"step must be an int >= 0 or a 1-d array of them; got {steps.dtype} with shape {steps.shape}")
    steps = steps.astype(np.int64, copy=False).reshape(-1)
    if len(steps) and (steps.min() < 0 or steps.max() > MAX_STEP):
        raise ValueError(f"step must be between 0 and {MAX_STEP}; got values from {steps.min()} to {steps.max()}")
    return steps


def metric_timestamps(timestamp: Any, length: int) -> np.ndarray | float:
    if isinstance(timestamp, np.ndarray):
        if timestamp.ndim != 1 or len(timestamp) != length:
            raise ValueError(f"timestamp must be one value or an array of {length}; got shape {timestamp.shape}")
        for bound in (timestamp.min(), timestamp.max()):
            epoch_seconds(float(bound))
        return timestamp.astype(np.float64)
    return epoch_seconds(timestamp)
