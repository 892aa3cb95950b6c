"""What one logging call costs the caller: sync and async ``log_metric``, numpy ``log_metrics`` per
point, against a bare ``deque.append`` of the same tuple. Run by hand:

    .venv/bin/python benchmarks/caller_cost.py [--calls 50000]

Control calls go to a moto server and metrics to the recording fake (tests/metrics_fake.py), each
in its own process. The queue is made large enough never to fill, so that the figures are the cost
of validating and queueing, not of waiting for the network. Each scenario is measured twice:
the mean over a tight loop of ``--calls`` calls (the best of 5 chunks: the machine may be busy),
and the distribution of single calls, each timed with ``perf_counter_ns`` (the timer's own median
cost is subtracted from p50 and p99). The mean includes the loop and a closure call around each
call, as the floor's does; it also includes the engine's work on the caller's process, which the
p50 of single calls mostly does not.

While the caller logs, the engine sends: for the sync API on its own thread (which takes the GIL
now and then, and shows in p99), for the async API on the caller's loop, between the awaits that
yield. "engine idle" logs to a sync run not yet entered, where nothing drains the queue: the cost
of the call alone.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import deque
from typing import Any, Callable

import anyio
import numpy as np

from _endpoints import fake_reset, fake_stats, metrics_fake, moto_server

import sagerun
import sagerun.sync

NAME = "train:loss"
BLOCK = 1_000  # points per log_metrics call


def timer_overhead() -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(100_000):
        start = clock()
        samples.append(clock() - start)
    return statistics.median(samples)


def measure(call: Callable[[int], Any], calls: int, per_call: int = 1, warm: int = 10_000) -> dict[str, float]:
    """Mean over a tight loop (best of 5 chunks, against load noise), and p50/p99 of single calls,
    in µs per point."""
    for i in range(min(calls, warm)):  # warm up: names seen, caches filled
        call(i)
    chunk, means = max(calls // 5, 1), []
    for first in range(0, chunk * 5, chunk):
        start = time.perf_counter()
        for i in range(first, first + chunk):
            call(i)
        means.append((time.perf_counter() - start) / chunk / per_call * 1e6)
    clock, samples = time.perf_counter_ns, []
    for i in range(calls):
        begin = clock()
        call(i)
        samples.append(clock() - begin)
    samples.sort()
    return {"mean": min(means), "p50": samples[len(samples) // 2] / per_call / 1e3,
            "p99": samples[int(len(samples) * 0.99)] / per_call / 1e3}


async def measure_async(call: Callable[[int], Any], calls: int) -> dict[str, float]:
    for i in range(min(calls, 10_000)):
        await call(i)
    chunk, means = max(calls // 5, 1), []
    for first in range(0, chunk * 5, chunk):
        start = time.perf_counter()
        for i in range(first, first + chunk):
            await call(i)
            if i % 1_000 == 0:
                await anyio.sleep(0)  # a training step yields now and then: the engine runs then
        means.append((time.perf_counter() - start) / chunk * 1e6)
    clock, samples = time.perf_counter_ns, []
    for i in range(calls):
        begin = clock()
        await call(i)
        samples.append(clock() - begin)
        if i % 1_000 == 0:
            await anyio.sleep(0)
    samples.sort()
    return {"mean": min(means), "p50": samples[len(samples) // 2] / 1e3,
            "p99": samples[int(len(samples) * 0.99)] / 1e3}


def floor(calls: int) -> dict[str, float]:
    points: deque[tuple[str, float, int, float]] = deque()
    append, now = points.append, time.time

    def call(i: int) -> None:
        append((NAME, 0.5, i, now()))

    return measure(call, calls)


def sync_log_metric(session: sagerun.Session, calls: int, *, entered: bool) -> dict[str, float]:
    run = sagerun.sync.Run("bench", f"sync-{entered}-{time.time_ns()}", session=session)
    log = run.log_metric

    def call(i: int) -> None:
        log(NAME, 0.5, step=i)

    if not entered:  # nothing drains the queue yet: the call alone
        result = measure(call, calls)
        with run:
            pass
        return result
    with run:
        return measure(call, calls)


def sync_log_metrics(session: sagerun.Session, calls: int) -> dict[str, float]:
    values, steps = np.linspace(0.0, 1.0, BLOCK), np.arange(BLOCK)
    with sagerun.sync.Run("bench", f"numpy-{time.time_ns()}", session=session) as run:
        log = run.log_metrics
        return measure(lambda i: log({NAME: values}, step=steps + i * BLOCK), max(calls // 500, 50), BLOCK, warm=10)


async def async_log_metric(session: sagerun.Session, calls: int) -> dict[str, float]:
    async with sagerun.Run("bench", f"async-{time.time_ns()}", session=session) as run:
        log = run.log_metric
        return await measure_async(lambda i: log(NAME, 0.5, step=i), calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50_000)
    args = parser.parse_args()
    calls = args.calls
    overhead_us = timer_overhead() / 1e3
    rows: list[tuple[str, dict[str, float]]] = []
    with moto_server() as moto, metrics_fake() as fake:
        fake_reset(fake)
        session = sagerun.Session(region="us-east-1", endpoint_url=moto, metrics_endpoint_url=fake,
                                  queue_capacity=10 * calls + 100_000, close_timeout=600)
        rows.append(("deque.append floor", floor(calls)))
        rows.append(("sync log_metric", sync_log_metric(session, calls, entered=True)))
        rows.append(("sync log_metric, engine idle", sync_log_metric(session, calls, entered=False)))
        rows.append(("async log_metric", anyio.run(async_log_metric, session, calls)))
        rows.append((f"sync log_metrics, numpy x{BLOCK}, per point", sync_log_metrics(session, calls)))
        delivered = fake_stats(fake)["points"]
    base = rows[0][1]["mean"]
    print(f"{calls:,} calls a scenario; timer overhead {overhead_us * 1e3:.0f} ns, subtracted from p50/p99; "
          f"{delivered:,} points delivered to the fake")
    print(f"{'scenario':<38}{'mean µs':>9}{'p50 µs':>9}{'p99 µs':>9}{'mean / floor':>14}")
    for name, row in rows:
        per_point = "per point" in name
        p50 = row["p50"] - (0 if per_point else overhead_us)
        p99 = row["p99"] - (0 if per_point else overhead_us)
        print(f"{name:<38}{row['mean']:>9.3f}{p50:>9.3f}{p99:>9.3f}{row['mean'] / base:>13.1f}x")


if __name__ == "__main__":
    main()
