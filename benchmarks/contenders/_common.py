"""What every contender script shares: its arguments, the two workloads, the timing of single calls
and the JSON line it prints. Standard library and numpy only: it is imported from each contender's
own virtual environment (sagerun's, the SageMaker SDK's, MLflow's).

Workloads (one per process, so that peak RSS and CPU are the contender's own):
  points  10 metrics x N steps, one call per point, each call timed with perf_counter_ns; then the
          tracker is closed and the time until close returns is the end-to-end time.
  bursty  the points workload with its N steps split into --bursts bursts and --idle seconds of sleep
          between them: the calls of a burst that follows idle time are timed as well (a sender
          that went quiet must wake up without the caller paying for it). The idle time is not
          part of log_s, but is part of e2e_s.
  runs    N runs one after the other, each opened, given 10 metrics x 10 steps (one call per point)
          and closed: the per-run overhead (per_run_ms, and its p50 and p99), which a long run hides.
  train   a loop doing fixed numpy work per step, first without the tracker, then logging 10 metrics
          per step, then without again (the baseline is the mean of the two "off" phases, which
          evens out load that changes during the run); steps/s off and on give the slowdown.

Every loop stops at --steps or at --deadline seconds, whichever comes first: the slow contenders
(the SageMaker SDK at 20 ms, MLflow) would otherwise take many minutes. The deadline bounds each burst
of the bursty workload, so that every burst happens, and the runs workload stops only between runs,
so that every run it opened is closed. The points actually logged are reported, and the runner
compares them with the points delivered.
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
RUN_STEPS = 10  # of each run of the runs workload: 100 points, a short run
EXPERIMENT = "bench"  # lowercase: the SageMaker SDK puts it into the trial component name


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workload", choices=("points", "bursty", "runs", "train", "down"), default="points")
    parser.add_argument("--steps", type=int, default=10_000,
                        help="steps of 10 metrics each (all bursts together); for --workload runs, the runs")
    parser.add_argument("--bursts", type=int, default=5, help="bursts of the bursty workload")
    parser.add_argument("--idle", type=float, default=1.0, help="seconds of sleep between bursts")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds a logging loop may run")
    parser.add_argument("--matmul", type=int, default=256, help="side of the square matmul of a train step")
    parser.add_argument("--fake", help="URL of the metrics fake")
    parser.add_argument("--moto", help="URL of the moto server (control calls)")
    parser.add_argument("--store", help="folder of a local store (sagerun's, MLflow's SQLite)")
    parser.add_argument("--mlflow", help="URL of an MLflow tracking server to log to")
    parser.add_argument("--variant", default="", help="contender-specific choice, e.g. the sagerun API")
    parser.add_argument("--sender", default="process", help="sagerun's Session.sender")
    parser.add_argument("--system-metrics", action="store_true", help="sagerun's Session(system_metrics=True)")
    parser.add_argument("--queue", type=int, default=0,
                        help="sagerun's queue_capacity; 0: room for the whole workload")
    return parser.parse_args()


def server_down(log: Callable[[str, float, int], Any], close: Callable[[], Any]) -> dict[str, Any]:
    """The down workload: 1,000 points delivered, then "LOGGING" on stdout, after which the runner
    kills the server; 1,000 more points, then ``close()`` timed: how long closing takes with the
    server gone."""
    for step in range(100):
        for name in METRICS:
            log(name, 0.5, step)
    print("LOGGING", flush=True)
    time.sleep(2.0)  # the runner kills the server meanwhile
    for step in range(100, 200):
        for name in METRICS:
            log(name, 0.5, step)
    started = time.perf_counter()
    close()
    closed = time.perf_counter() - started
    return {"logged": 2_000, "log_s": 0.0, "close_s": closed, "e2e_s": closed}


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

    def summary(self, overhead_ns: float, keys: tuple[str, str, str] = ("call_mean_us", "call_p50_us", "call_p99_us"),
                unit_ns: float = 1e3) -> dict[str, float]:
        """Mean, median and 99th percentile, named by ``keys``, in units of ``unit_ns``."""
        done = sorted(self.samples[: self.count])
        if not done:
            return dict.fromkeys(keys, float("nan"))
        mean, p50, p99 = sum(done) / len(done), done[len(done) // 2], done[int(len(done) * 0.99)]
        return {key: max(ns - overhead_ns, 0) / unit_ns for key, ns in zip(keys, (mean, p50, p99))}


def bursts(args: argparse.Namespace) -> list[range]:
    """The steps of each burst: one for the points workload, --bursts for the bursty one."""
    count = args.bursts if args.workload == "bursty" else 1
    return [range(args.steps * i // count, args.steps * (i + 1) // count) for i in range(count)]


def log_points(log: Callable[[str, float, int], Any], args: argparse.Namespace) -> dict[str, Any]:
    """The points or bursty workload for a synchronous call `log(name, value, step)`."""
    calls, clock = Calls(args.steps * len(METRICS)), time.perf_counter_ns
    started, idle = time.perf_counter(), 0.0
    for burst, steps in enumerate(bursts(args)):
        if burst:
            idle += idle_between_bursts(args)
        stop = time.perf_counter() + args.deadline
        for step in steps:
            for name in METRICS:
                begin = clock()
                log(name, 0.5, step)
                calls.add(clock() - begin)
            if time.perf_counter() > stop:
                break
    return {"logged": calls.count, "log_s": time.perf_counter() - started - idle, "idle_s": idle, "calls": calls}


def idle_between_bursts(args: argparse.Namespace) -> float:
    """Sleep --idle seconds; return the seconds actually slept."""
    started = time.perf_counter()
    time.sleep(args.idle)
    return time.perf_counter() - started


PER_RUN = ("per_run_ms", "per_run_p50_ms", "per_run_p99_ms")


def log_runs(args: argparse.Namespace, tracked: Callable[[], ContextManager[Any]],
             log_with: Callable[[Any], Callable[[str, float, int], Any]]) -> dict[str, Any]:
    """The runs workload: --steps runs, each ``tracked()`` (the contender's run) given the points
    ``log_with(run)`` logs, and timed from opening to closed."""
    times, clock = Calls(args.steps), time.perf_counter_ns
    stop = time.perf_counter() + args.deadline
    started = time.perf_counter()
    for _ in range(args.steps):
        begin = clock()
        with tracked() as run:
            log = log_with(run)
            for step in range(RUN_STEPS):
                for name in METRICS:
                    log(name, 0.5, step)
        times.add(clock() - begin)
        if time.perf_counter() > stop:
            break
    return runs_result(times, time.perf_counter() - started)


def runs_result(times: Calls, seconds: float) -> dict[str, Any]:
    """The runs workload's figures from the time of each run; every run is closed, so its loop is
    end to end."""
    return {"logged": times.count * RUN_STEPS * len(METRICS), "runs": times.count, "log_s": seconds,
            "e2e_s": seconds, **times.summary(0, PER_RUN, 1e6)}


def matmul_work(size: int) -> Callable[[], None]:
    """The fixed work of one training step: one float32 matmul of two size x size matrices."""
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    b = a.T.copy()
    return lambda: a @ b


#: rounds of the training workload, off and on (issue 13: the median of three)
ROUNDS = 3


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
    """The training workload: steps/s with the tracker off (before and after) and on, ``ROUNDS``
    times, off and on in turn; the round with the median slowdown is the result. Each on phase
    runs inside ``tracked()`` (a new run of the contender's), with the steps ``step_with(run, work)``
    makes; end to end is until that block has closed, every point handed over."""
    work = matmul_work(args.matmul)
    rounds = []
    off = train_phase(lambda i: work(), args)
    for _ in range(ROUNDS):
        started = time.perf_counter()
        with tracked() as run:
            on = train_phase(step_with(run, work), args)
        e2e = time.perf_counter() - started
        after = train_phase(lambda i: work(), args)
        rounds.append({**train_result([off, after], on), "e2e_s": e2e})
        off = after
    rounds.sort(key=lambda r: r["slowdown_pct"])
    # Every round's points count as logged: the endpoint got them all, and lost is counted from them.
    return {**rounds[len(rounds) // 2], "logged": sum(r["logged"] for r in rounds), "log_s": sum(r["log_s"] for r in rounds),
            "slowdown_rounds_pct": [r["slowdown_pct"] for r in rounds]}


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
    the peak RSS of this process alone. A child's ``ru_maxrss`` is no measure of it: a child started by
    fork and exec reports this process's size at the fork, so sagerun's sender is sampled from /proc
    instead (``sender_rss_mib``)."""
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
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
