"""What every contender script shares: its arguments, the two workloads, the timing of single calls
and the JSON line it prints. Standard library and numpy only: it is imported from each contender's
own virtual environment (sagerun's, the SageMaker SDK's, MLflow's).

Workloads (one per process, so that peak RSS and CPU are the contender's own):
  points  10 metrics x N steps, one call per point, each call timed with perf_counter_ns; then the
          tracker is closed and the time until close returns is the end-to-end time.
  train   a loop doing fixed numpy work per step, first without the tracker, then logging 10 metrics
          per step, then without again (the baseline is the mean of the two "off" phases, which
          evens out load that changes during the run); steps/s off and on give the slowdown.

Every loop stops at --steps or at --deadline seconds, whichever comes first: the slow contenders
(the SageMaker SDK at 20 ms, MLflow) would otherwise take many minutes. The points actually logged
are reported, and the runner compares them with the points delivered.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import resource
import statistics
import sys
import time
from typing import Any, Callable, ContextManager

# One BLAS thread: the training step then uses one of the two cores, and whatever the tracker does
# on the other (a sender thread, a process) shows as what it is instead of as noise. Set before
# numpy is imported anywhere in the process.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

METRICS = tuple(f"m{i}" for i in range(10))
EXPERIMENT = "bench"  # lowercase: the SageMaker SDK puts it into the trial component name


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workload", choices=("points", "train"), default="points")
    parser.add_argument("--steps", type=int, default=10_000, help="steps of 10 metrics each")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds a logging loop may run")
    parser.add_argument("--matmul", type=int, default=256, help="side of the square matmul of a train step")
    parser.add_argument("--fake", help="URL of the metrics fake")
    parser.add_argument("--moto", help="URL of the moto server (control calls)")
    parser.add_argument("--store", help="folder of a local store (sagerun's, MLflow's SQLite)")
    parser.add_argument("--variant", default="", help="contender-specific choice, e.g. the sagerun API")
    parser.add_argument("--sender", default="process", help="sagerun's Session.sender")
    parser.add_argument("--queue", type=int, default=0,
                        help="sagerun's queue_capacity; 0: room for the whole workload")
    return parser.parse_args()


def run_name(prefix: str) -> str:
    """Unique and lowercase, valid both as a SageMaker run name and in a trial component name."""
    return f"{prefix}-{time.time_ns()}"


def timer_overhead_ns() -> float:
    """Median cost of an empty perf_counter_ns pair, subtracted from single-call figures."""
    clock, samples = time.perf_counter_ns, []
    for _ in range(20_000):
        start = clock()
        samples.append(clock() - start)
    return statistics.median(samples)


class Calls:
    """Single-call latencies in ns, in a preallocated array of int64: recording allocates nothing,
    and 1M samples take 8 MB instead of the ~36 MB of a list of ints, which would show in the
    contender's peak RSS."""

    def __init__(self, capacity: int) -> None:
        self.samples = array.array("q", bytes(8 * capacity))
        self.count = 0

    def add(self, ns: int) -> None:
        self.samples[self.count] = ns
        self.count += 1

    def summary(self, overhead_ns: float) -> dict[str, float]:
        done = sorted(self.samples[: self.count])
        if not done:
            return {"call_mean_us": float("nan"), "call_p50_us": float("nan"), "call_p99_us": float("nan")}
        return {"call_mean_us": max(sum(done) / len(done) - overhead_ns, 0) / 1e3,
                "call_p50_us": max(done[len(done) // 2] - overhead_ns, 0) / 1e3,
                "call_p99_us": max(done[int(len(done) * 0.99)] - overhead_ns, 0) / 1e3}


def log_points(log: Callable[[str, float, int], Any], args: argparse.Namespace) -> dict[str, Any]:
    """The points workload for a synchronous call `log(name, value, step)`."""
    calls, clock = Calls(args.steps * len(METRICS)), time.perf_counter_ns
    stop = time.perf_counter() + args.deadline
    started = time.perf_counter()
    for step in range(args.steps):
        for name in METRICS:
            begin = clock()
            log(name, 0.5, step)
            calls.add(clock() - begin)
        if time.perf_counter() > stop:
            break
    return {"logged": calls.count, "log_s": time.perf_counter() - started, "calls": calls}


def matmul_work(size: int) -> Callable[[], None]:
    """The fixed work of one training step: one float32 matmul of two size x size matrices."""
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    b = a.T.copy()
    return lambda: a @ b


def train_phase(step: Callable[[int], None], args: argparse.Namespace, steps: int | None = None) -> tuple[int, float]:
    """Run `step(i)` up to `steps` times or until the deadline; return (steps done, seconds)."""
    stop = time.perf_counter() + args.deadline
    started = time.perf_counter()
    done = 0
    for i in range(steps or args.steps):
        step(i)
        done += 1
        if time.perf_counter() > stop:
            break
    return done, time.perf_counter() - started


def train(args: argparse.Namespace, tracked: Callable[[], ContextManager[Any]],
          step_with: Callable[[Any, Callable[[], None]], Callable[[int], None]]) -> dict[str, Any]:
    """The training workload: steps/s with the tracker off (before and after) and on. The on phase
    runs inside ``tracked()`` (the contender's run), with the steps ``step_with(run, work)`` makes;
    end to end is until that block has closed, every point handed over."""
    work = matmul_work(args.matmul)
    off = [train_phase(lambda i: work(), args)]
    started = time.perf_counter()
    with tracked() as run:
        on = train_phase(step_with(run, work), args)
    e2e = time.perf_counter() - started
    off.append(train_phase(lambda i: work(), args))
    return {**train_result(off, on), "e2e_s": e2e}


def logging_step(work: Callable[[], None], log: Callable[[str, float, int], Any]) -> Callable[[int], None]:
    """A training step: the fixed work, then each metric logged once."""
    def step(i: int) -> None:
        work()
        for name in METRICS:
            log(name, 0.5, i)

    return step


def train_result(off: list[tuple[int, float]], on: tuple[int, float]) -> dict[str, Any]:
    """Steps/s off (mean of the phases before and after) and on, and the slowdown in percent."""
    off_rate = statistics.mean(done / seconds for done, seconds in off)
    on_rate = on[0] / on[1]
    return {"steps_per_s_off": off_rate, "steps_per_s_on": on_rate,
            "slowdown_pct": (off_rate / on_rate - 1) * 100, "logged": on[0] * len(METRICS),
            "log_s": on[1], "points_per_s_logged": on[0] * len(METRICS) / on[1]}


def emit(result: dict[str, Any], cpu_s: float) -> None:
    """Print the contender's one JSON line, with the CPU seconds its workload used (all threads of
    the process and its ended child processes: a tracker's sender threads and processes count) and
    the peak RSS of the process plus that of its largest child (sagerun's sender process)."""
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result["peak_rss_mib"] = rss_kib / 1024  # Linux: KiB
    calls = result.pop("calls", None)
    if calls is not None:
        result.update(calls.summary(timer_overhead_ns()))
    result["cpu_s"] = cpu_s
    result["python"] = sys.version.split()[0]
    print(json.dumps(result), flush=True)


def cpu_now() -> float:
    """CPU seconds of the whole process so far, user and system, every thread, and of its child
    processes that have ended (sagerun's sender process ends when its run closes)."""
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))
