"""Model · what travels through the engine: single points and blocks of points from numpy arrays."""

from __future__ import annotations

from itertools import repeat
from typing import TYPE_CHECKING, Iterator, Optional, Tuple

if TYPE_CHECKING:  # numpy is not imported here: the sender process, which never sees a block, runs without it
    import numpy as np

Point = Tuple[str, float, Optional[int], float]
"""One metric sample: name, value, step, and epoch seconds taken on the caller.

A plain tuple, not a NamedTuple: building one is the caller's hot path, and a tuple is built in C."""


class Block:
    """Many points of one metric, kept as arrays until the drain needs them.

    A block costs the caller one queue slot instead of one Python object per point. ``timestamps``
    is one float for every point (``checks.metric_timestamps`` gives a Python float) or an array.
    """

    __slots__ = ("name", "values", "steps", "timestamps")

    def __init__(self, name: str, values: np.ndarray, steps: np.ndarray | None,
                 timestamps: np.ndarray | float) -> None:
        self.name = name
        self.values = values
        self.steps = steps
        self.timestamps = timestamps

    def __len__(self) -> int:
        return len(self.values)

    @property
    def first_timestamp(self) -> float:
        return float(self.timestamps if isinstance(self.timestamps, float) else self.timestamps[0])

    def split(self, n: int) -> tuple[Block, Block]:
        """The first ``n`` points and the rest, as views of the same arrays."""
        steps = self.steps
        times = self.timestamps
        scalar = isinstance(times, float)
        return (
            Block(self.name, self.values[:n], None if steps is None else steps[:n], times if scalar else times[:n]),
            Block(self.name, self.values[n:], None if steps is None else steps[n:], times if scalar else times[n:]),
        )

    def points(self) -> Iterator[Point]:
        steps = repeat(None) if self.steps is None else self.steps.tolist()
        times = repeat(self.timestamps) if isinstance(self.timestamps, float) else self.timestamps.tolist()
        return zip(repeat(self.name), self.values.tolist(), steps, times)
