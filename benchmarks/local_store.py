"""How fast the local store takes the points of one run, through the public API. Run by hand:

    .venv/bin/python benchmarks/local_store.py [--points 1000000]

Each scenario runs in a fresh process (so that peak RSS is its own) against a fresh store in a
temporary folder, and is timed from entering the Run to leaving it, i.e. until every point is
committed. The count of stored points is checked before a figure is printed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import anyio
import numpy as np

import sagerun
from sagerun.store import opened
from sagerun.store.queries import find_run

SCENARIOS = {
    "log_metric loop": "one call per point, 4 metrics in turn",
    "log_metrics arrays": "4 metrics as numpy arrays, 10,000 steps per call",
}


async def _log_metric_loop(run: sagerun.Run, points: int) -> None:
    names = ("train:loss", "train:accuracy", "train:lr", "grad:norm")
    for i in range(points // len(names)):
        for name in names:
            await run.log_metric(name, 0.5, step=i)


async def _log_metrics_arrays(run: sagerun.Run, points: int) -> None:
    names = ("train:loss", "train:accuracy", "train:lr", "grad:norm")
    chunk = 10_000
    values = np.random.default_rng(0).random(chunk)
    for start in range(0, points // len(names), chunk):
        steps = np.arange(start, start + chunk)
        for name in names:
            await run.log_metrics({name: values}, step=steps)


async def _scenario(name: str, points: int, store: str) -> float:
    session = sagerun.Session(backend="local", store=store)
    log = _log_metric_loop if name == "log_metric loop" else _log_metrics_arrays
    started = time.perf_counter()
    async with sagerun.Run(experiment_name="bench", run_name="one-million", session=session) as run:
        await log(run, points)
    return time.perf_counter() - started


def _child(name: str, points: int) -> None:
    with tempfile.TemporaryDirectory() as store:
        seconds = anyio.run(_scenario, name, points, store)
        with opened(store) as conn:
            stored = find_run(conn, "bench/one-million").points
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(json.dumps({"scenario": name, "points": stored, "seconds": seconds, "peak_rss_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.points)
        return
    print(f"{'scenario':<20} {'points':>10} {'seconds':>8} {'points/s':>11} {'peak RSS':>9}")
    for name in SCENARIOS:
        out = subprocess.run([sys.executable, __file__, "--points", str(args.points), "--child", name],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        if r["points"] != args.points:
            raise SystemExit(f"{name}: {r['points']} points stored, {args.points} logged")
        print(f"{name:<20} {r['points']:>10,} {r['seconds']:>8.2f} {r['points'] / r['seconds']:>11,.0f} "
              f"{r['peak_rss_mb']:>6.0f} MB")


if __name__ == "__main__":
    main()
