"""sagerun, in its own process: `--variant async` (`await run.log_metric`), `sync` (the sync facade's
`log_metric`) or `numpy` (the sync facade's `log_metrics`, one call per step with the 10 metrics as a
dict, and for the points workload one call per metric of a whole numpy array of steps; not for the
bursty and runs workloads); to the metrics fake (`--fake`, control calls on `--moto`) or to the local
store (`--store`).

Runs in sagerun's venv. By default the queue holds every point of the workload, as in engine.py:
the figures are the tracker's, not the back-pressure of a small queue; `--queue N` sets the
capacity (the 1M-point rows: peak RSS must follow the queue, not the points).
"""

from __future__ import annotations

import logging
import time

import _common
from procfs import RssSampler
import anyio
import numpy as np

import sagerun
import sagerun.sync
from sagerun.store import opened
from sagerun.store.queries import list_runs


def session(args) -> sagerun.Session:
    capacity = args.queue or max(args.steps * len(_common.METRICS), 100_000)
    if args.mlflow:  # the spool of what the server cannot take goes to a folder of the runner's
        return sagerun.Session(backend="mlflow", tracking_uri=args.mlflow, store=args.store, queue_capacity=capacity,
                               close_timeout=30 if args.workload == "down" else 600)
    if args.store:
        return sagerun.Session(backend="local", store=args.store, queue_capacity=capacity, close_timeout=600)
    return sagerun.Session(backend="sagemaker", region="us-east-1", endpoint_url=args.moto,
                           metrics_endpoint_url=args.fake, queue_capacity=capacity, close_timeout=600,
                           sender=args.sender, system_metrics=args.system_metrics, system_metrics_interval=1.0)


def stored(args) -> int | None:
    """Points the local store holds, every run of the workload's (the store is new for each row;
    None for the fake: the runner asks the fake)."""
    if not args.store or args.mlflow:
        return None
    with opened(args.store) as conn:
        return sum(run.points for run in list_runs(conn, _common.EXPERIMENT))


# -- the async API: the engine runs on the caller's event loop, so the loop must yield to it ---------

async def async_points(args, name: str) -> dict:
    """The points and the bursty workloads."""
    calls, clock = _common.Calls(args.steps * len(_common.METRICS)), time.perf_counter_ns
    started, idle = time.perf_counter(), 0.0
    async with sagerun.Run(_common.EXPERIMENT, name, session=session(args)) as run:
        log = run.log_metric
        for burst, steps in enumerate(_common.bursts(args)):
            if burst:
                begin_idle = time.perf_counter()
                await anyio.sleep(args.idle)  # the engine has the loop to itself: it may drain and go quiet
                idle += time.perf_counter() - begin_idle
            stop = time.perf_counter() + args.deadline
            for step in steps:
                for metric in _common.METRICS:
                    begin = clock()
                    await log(metric, 0.5, step=step)
                    calls.add(clock() - begin)
                if step % 100 == 0:
                    await anyio.sleep(0)  # as engine.py: async training code yields now and then
                if time.perf_counter() > stop:
                    break
        logged_s = time.perf_counter() - started - idle
    return {"logged": calls.count, "log_s": logged_s, "idle_s": idle, "e2e_s": time.perf_counter() - started,
            "calls": calls}


async def async_runs(args, name: str) -> dict:
    """As _common.log_runs, with the async API; one Session for all runs, as a user would have."""
    times, clock, shared = _common.Calls(args.steps), time.perf_counter_ns, session(args)
    stop = time.perf_counter() + args.deadline
    started = time.perf_counter()
    for i in range(args.steps):
        begin = clock()
        async with sagerun.Run(_common.EXPERIMENT, f"{name}-{i}", session=shared) as run:
            for step in range(_common.RUN_STEPS):
                for metric in _common.METRICS:
                    await run.log_metric(metric, 0.5, step=step)
        times.add(clock() - begin)
        if time.perf_counter() > stop:
            break
    return _common.runs_result(times, time.perf_counter() - started)


async def async_train(args, name: str) -> dict:
    work = _common.matmul_work(args.matmul)

    async def phase(run) -> tuple[int, float]:
        started, done = time.perf_counter(), 0
        for step in range(args.steps):
            work()
            if run is not None:
                for metric in _common.METRICS:
                    await run.log_metric(metric, 0.5, step=step)
            await anyio.sleep(0)  # one yield a step, in both phases: the engine's turn
            done += 1
            if time.perf_counter() - started > args.deadline:
                break
        return done, time.perf_counter() - started

    off = [await phase(None)]
    started = time.perf_counter()
    async with sagerun.Run(_common.EXPERIMENT, name, session=session(args)) as run:
        on = await phase(run)
    e2e = time.perf_counter() - started
    off.append(await phase(None))
    return {**_common.train_result(off, on), "e2e_s": e2e}


# -- the sync facade: the engine runs on its own thread; log_metric(s) check and queue on the caller's -

def sync_log(run, variant: str):
    if variant == "sync":
        log_metric = run.log_metric
        return lambda name, value, step: log_metric(name, value, step=step)
    log_metrics = run.log_metrics
    return lambda step: log_metrics(dict.fromkeys(_common.METRICS, 0.5), step=step)


def numpy_points(run, args) -> dict:
    """All steps of one metric per call: the way to log a history already held in an array."""
    steps, values = np.arange(args.steps), np.full(args.steps, 0.5)
    calls, clock = _common.Calls(len(_common.METRICS)), time.perf_counter_ns
    started = time.perf_counter()
    for metric in _common.METRICS:
        begin = clock()
        run.log_metrics({metric: values}, step=steps)
        calls.add(clock() - begin)
    result = {"logged": args.steps * len(_common.METRICS), "log_s": time.perf_counter() - started}
    # Per point: a call carries args.steps points.
    summary = calls.summary(0)
    result.update({k: v / args.steps for k, v in summary.items()})
    return result


def sync_points(args, name: str) -> dict:
    started = time.perf_counter()
    with sagerun.sync.Run(_common.EXPERIMENT, name, session=session(args)) as run:
        if args.variant == "numpy":
            result = numpy_points(run, args)
        else:
            result = _common.log_points(sync_log(run, "sync"), args)
    return {**result, "e2e_s": time.perf_counter() - started}


def sync_down(args, name: str) -> dict:
    run = sagerun.sync.Run(_common.EXPERIMENT, name, session=session(args))
    run.__enter__()
    result = _common.server_down(sync_log(run, "sync"), lambda: run.__exit__(None, None, None))
    return {**result, "kept": run.ingest_stats.failed}


def sync_runs(args, name: str) -> dict:
    shared = session(args)
    return _common.log_runs(args, lambda: sagerun.sync.Run(_common.EXPERIMENT, _common.run_name(name), session=shared),
                            lambda run: sync_log(run, "sync"))


def sync_train(args, name: str) -> dict:
    def step_with(run, work):
        if args.variant != "numpy":
            return _common.logging_step(work, sync_log(run, "sync"))
        log_step = sync_log(run, "numpy")

        def step(i: int) -> None:
            work()
            log_step(i)

        return step

    return _common.train(args, lambda: sagerun.sync.Run(_common.EXPERIMENT, name, session=session(args)), step_with)


class ReadyTimes(logging.Handler):
    """The seconds each run's sender process took to be ready, from sagerun's debug log (the
    one place the engine says it)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seconds: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("sagerun: the sender process of") and "was ready" in record.getMessage():
            self.seconds.append(float(record.args[-1]))


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    if args.variant == "numpy" and args.workload in ("bursty", "runs"):
        raise SystemExit(f"--variant numpy has no {args.workload} workload")
    name = _common.run_name(f"sagerun-{args.variant}")
    workload = "points" if args.workload == "bursty" else args.workload  # bursty: points with idle gaps
    ready = ReadyTimes()
    logging.getLogger("sagerun").addHandler(ready)
    logging.getLogger("sagerun").setLevel(logging.DEBUG)
    cpu = _common.cpu_now()
    with RssSampler() as rss:
        if args.variant == "async":
            result = anyio.run({"points": async_points, "runs": async_runs, "train": async_train}[workload], args, name)
        else:
            workloads = {"points": sync_points, "runs": sync_runs, "train": sync_train, "down": sync_down}
            result = workloads[workload](args, name)
    cpu = _common.cpu_now() - cpu  # before counting the store's points, which is not logging
    result["sender_rss_mib"] = rss.sender_peak / 2**20 if rss.sender_peak else None
    result["delivered_local"] = stored(args)
    result["sender_ready_s"] = max(ready.seconds) if ready.seconds else None
    _common.emit(result, cpu)


if __name__ == "__main__":
    main()
