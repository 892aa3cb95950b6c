"""The floor of a caller-side enqueue: `deque.append((name, value, step, time.time()))`, no tracker.

Runs in sagerun's venv (standard library only). Nothing is delivered: the runner shows its caller
cost as the unit the targets are written in, and its training loop as the cost of the timing alone.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque

import _common


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    points: deque = deque()
    append, now = points.append, time.time

    def log(name: str, value: float, step: int) -> None:
        append((name, value, step, now()))

    cpu = _common.cpu_now()
    if args.workload == "points":
        result = _common.log_points(log, args)
        result["e2e_s"] = result["log_s"]
    else:
        result = _common.train(args, contextlib.nullcontext, lambda _, work: _common.logging_step(work, log))
    cpu = _common.cpu_now() - cpu
    result["delivered_local"] = len(points)  # "delivered" to the deque
    _common.emit(result, cpu)


if __name__ == "__main__":
    main()
