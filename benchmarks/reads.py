"""The read API side by side with MLflow's own reads, in one run on this machine:

    .venv/bin/python benchmarks/reads.py [--quick] [--json benchmarks/results/reads.json]

1. ``sagerun.sync.search_runs`` over 1,000 runs of the local store (5 parameters, 3 metrics of 20
   points each): all of them, and the 10 of lowest last loss (``order_by`` and ``max_results``).
2. ``search_runs`` over 200 runs of a real ``mlflow server`` (SQLite store), against
   ``mlflow.search_runs`` on the same server.
3. ``metric_histories`` of one local metric of 1,000,000 points, as arrays and as a DataFrame, and
   the open run's ``run.metric_history``.
4. ``metric_histories`` of one metric of 100,000 points through sagerun's MLflow backend, against
   ``MlflowClient().get_metric_history`` on the same server.

Each figure is the median of 5 timed calls (3 for row 4) after one untimed call, so that neither
side pays its imports and first connection in the figure. The server runs in its own process on
127.0.0.1 with its telemetry off; every store is in a temporary folder. ``--quick`` is a tenth of
the sizes and one round, to check the harness. Prints one table and the issue's targets; writes
JSON only with ``--json``, and only under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent / "tests"))
from mlflow_server import QUIET_ENV, MlflowServer  # noqa: E402

# Before mlflow is imported. A proxy would put another hop into the reads measured; the URL that
# MLflow prints for each run it ends would bury the table.
os.environ.update({**QUIET_ENV, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
                   "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"})

import mlflow  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

import sagerun  # noqa: E402
import sagerun.sync  # noqa: E402

METRICS = ("loss", "accuracy", "lr")
STEPS = 20
MLFLOW_BATCH = 1_000  # MLflow's largest log-batch


@dataclass
class Row:
    what: str
    contender: str
    size: int
    times_ms: list[float] = field(default_factory=list)
    versus: str = ""  # the contender of the same what, measured here, whose median this one is set against
    ratio: float | None = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)


def timed(call: Callable[[], Any], rounds: int, check: Callable[[Any], int], expected: int) -> list[float]:
    """Milliseconds of each of ``rounds`` calls after an untimed one; every answer must hold ``expected``."""
    call()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = call()
        times.append((time.perf_counter() - started) * 1e3)
        if check(answer) != expected:
            raise SystemExit(f"a read returned {check(answer):,} rows or points, not {expected:,}")
    return times


def local_runs(store: str, runs: int) -> float:
    """Seconds to log ``runs`` runs of 5 parameters and 3 metrics of 20 points to the local store."""
    session = sagerun.Session(backend="local", store=store, sender="inline")
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for i in range(runs):
        with sagerun.sync.Run("exp", f"run-{i}", session=session) as run:
            run.log_parameters({"lr": 10.0 ** -rng.integers(1, 5), "batch": int(2 ** rng.integers(4, 9)),
                                "optimizer": ("adam", "sgd")[i % 2], "seed": i, "epochs": 3})
            run.log_metrics({name: rng.random(STEPS) for name in METRICS}, step=np.arange(STEPS))
    return time.perf_counter() - started


def mlflow_runs(client: MlflowClient, runs: int) -> float:
    """The same runs logged to the MLflow server by its own client: a request a run for all its data."""
    experiment = client.create_experiment("exp")
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for i in range(runs):
        run_id = client.create_run(experiment, run_name=f"run-{i}").info.run_id
        now = int(time.time() * 1000)
        params = [Param(k, str(v)) for k, v in {"lr": 10.0 ** -rng.integers(1, 5), "batch": 2 ** rng.integers(4, 9),
                                                 "optimizer": ("adam", "sgd")[i % 2], "seed": i, "epochs": 3}.items()]
        metrics = [Metric(name, float(v), now, step) for name in METRICS for step, v in enumerate(rng.random(STEPS))]
        client.log_batch(run_id, metrics=metrics, params=params)
        client.set_terminated(run_id)
    return time.perf_counter() - started


def mlflow_history(client: MlflowClient, points: int) -> tuple[str, float]:
    """A run of one metric of ``points`` points in its own experiment, so that finding it is one run's search."""
    experiment = client.create_experiment("hist")
    run_id = client.create_run(experiment, run_name="run").info.run_id
    values = np.random.default_rng(1).random(points)
    started = time.perf_counter()
    for start in range(0, points, MLFLOW_BATCH):
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric("loss", float(values[step]), now, step)
                                          for step in range(start, min(start + MLFLOW_BATCH, points))])
    client.set_terminated(run_id)
    return run_id, time.perf_counter() - started


def measure(sizes: dict[str, int], rounds: int) -> tuple[list[Row], dict[str, float]]:
    table: list[Row] = []
    setup: dict[str, float] = {}
    n_local, n_mlflow, local_points, mlflow_points = (sizes[k] for k in ("local_runs", "mlflow_runs",
                                                                          "local_points", "mlflow_points"))
    with tempfile.TemporaryDirectory(prefix="reads-") as tmp:
        local = sagerun.Session(backend="local", store=os.path.join(tmp, "runs"), sender="inline")
        setup[f"{n_local:,} local runs"] = local_runs(local.store, n_local)
        what = f"search_runs, local, {n_local:,} runs"
        table.append(Row(what, "sagerun all", n_local, timed(lambda: sagerun.sync.search_runs("exp", session=local),
                                                               rounds, len, n_local)))
        table.append(Row(what, "sagerun 10 lowest loss", 10, timed(
            lambda: sagerun.sync.search_runs("exp", session=local, order_by="metric.loss.last ASC", max_results=10),
            rounds, len, 10)))

        big = sagerun.Session(backend="local", store=os.path.join(tmp, "big"), sender="inline")
        what = f"metric history, local, {local_points:,} points"
        started = time.perf_counter()
        with sagerun.sync.Run("exp", "run", session=big) as run:
            values = np.random.default_rng(2).random(local_points)
            for start in range(0, local_points, 100_000):
                chunk = values[start:start + 100_000]
                run.log_metrics({"loss": chunk}, step=np.arange(start, start + len(chunk)))
            run.flush()
            setup[f"{local_points:,} local points"] = time.perf_counter() - started
            for as_frame in (False, True):
                table.append(Row(what, f"sagerun metric_histories as_frame={as_frame}", local_points, timed(
                    lambda: sagerun.sync.metric_histories(["exp/run"], "loss", session=big, as_frame=as_frame), rounds,
                    lambda h: len(h) if as_frame else len(h[("exp/run", "loss")].values), local_points)))
            table.append(Row(what, "sagerun run.metric_history", local_points, timed(
                lambda: run.metric_history("loss"), rounds, len, local_points)))

        with MlflowServer(Path(tmp) / "mlflow") as server:
            mlflow.set_tracking_uri(server.url)
            client = MlflowClient(server.url)
            remote = sagerun.Session(backend="mlflow", tracking_uri=server.url)
            setup[f"{n_mlflow:,} MLflow runs"] = mlflow_runs(client, n_mlflow)
            what = f"search_runs, MLflow server, {n_mlflow:,} runs"
            table.append(Row(what, "MLflow mlflow.search_runs", n_mlflow, timed(
                lambda: mlflow.search_runs(experiment_names=["exp"]), rounds, len, n_mlflow)))
            table.append(Row(what, "sagerun search_runs", n_mlflow, timed(
                lambda: sagerun.sync.search_runs("exp", session=remote), rounds, len, n_mlflow),
                versus="MLflow mlflow.search_runs"))

            run_id, setup[f"{mlflow_points:,} MLflow points"] = mlflow_history(client, mlflow_points)
            what = f"metric history, MLflow server, {mlflow_points:,} points"
            few = min(rounds, 3)
            table.append(Row(what, "MLflow get_metric_history", mlflow_points, timed(
                lambda: client.get_metric_history(run_id, "loss"), few, len, mlflow_points)))
            table.append(Row(what, "sagerun metric_histories", mlflow_points, timed(
                lambda: sagerun.sync.metric_histories(["hist/run"], "loss", session=remote, as_frame=False), few,
                lambda h: len(h[("hist/run", "loss")].values), mlflow_points), versus="MLflow get_metric_history"))
    for row in table:
        ref = next((r for r in table if r.what == row.what and r.contender == row.versus), None)
        if ref is not None:
            row.ratio = row.median_ms / ref.median_ms
    return table, setup


def targets(table: list[Row]) -> list[tuple[str, str, bool]]:
    out = []
    for row in table:
        if row.ratio is not None:
            out.append((f"{row.contender} at least as fast as {row.versus} ({row.what})",
                        f"{row.median_ms:,.1f} ms vs {row.median_ms / row.ratio:,.1f} ms, {row.ratio:.2f}×",
                        row.ratio <= 1.0))
        elif row.what.startswith("metric history, local"):
            out.append((f"{row.contender} well under a second ({row.what})", f"{row.median_ms:,.1f} ms",
                        row.median_ms < 1000.0))
    return out


def print_table(table: list[Row]) -> None:
    width = max(len(row.what) for row in table) + 2
    print(f"{'what':<{width}}{'contender':<42}{'rows/points':>12}{'median ms':>11}  {'rounds (ms)':<40}{'× MLflow':>9}")
    for row in table:
        rounds = " ".join(f"{t:.1f}" for t in row.times_ms)
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        print(f"{row.what:<{width}}{row.contender:<42}{row.size:>12,}{row.median_ms:>11.1f}  {rounds:<40}{ratio:>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes and one round, to check the harness")
    parser.add_argument("--json", type=Path, help="also write the figures here (under benchmarks/results/)")
    args = parser.parse_args()
    if args.json is not None and not args.json.resolve().is_relative_to(RESULTS):
        parser.error("--json must be under benchmarks/results/")
    sizes = ({"local_runs": 100, "mlflow_runs": 50, "local_points": 100_000, "mlflow_points": 10_000} if args.quick
             else {"local_runs": 1_000, "mlflow_runs": 200, "local_points": 1_000_000, "mlflow_points": 100_000})
    rounds = 1 if args.quick else 5
    load_before, started = os.getloadavg(), time.time()
    table, setup = measure(sizes, rounds)
    load_after = os.getloadavg()
    print(f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, sagerun "
          f"{getattr(sagerun, '__version__', '?')}, MLflow {mlflow.__version__}; load average {load_before[0]:.2f} "
          f"before, {load_after[0]:.2f} after; {time.time() - started:.0f} s")
    print("logged in: " + "; ".join(f"{what} {seconds:.1f} s" for what, seconds in setup.items()) + "\n")
    print_table(table)
    print("\ntargets" + (" (--quick: not the issue's sizes):" if args.quick else ":"))
    checks = targets(table)
    for what, figure, met in checks:
        print(f"  {'MET   ' if met else 'MISSED'} {what}: {figure}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "quick": args.quick, "sizes": sizes, "rounds": rounds, "load_before": load_before, "load_after": load_after,
            "setup_s": setup, "rows": [{**asdict(row), "median_ms": row.median_ms} for row in table],
            "targets": [{"target": w, "figure": f, "met": m} for w, f, m in checks]}, indent=1))
        print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
