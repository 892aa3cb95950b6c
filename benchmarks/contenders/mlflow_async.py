"""MLflow 3.x asynchronous logging: `mlflow.log_metric(..., synchronous=False)` to a local SQLite store.

Runs in benchmarks/.venvs/mlflow. The store is `<--store>/mlflow.db`; its schema is created (the
migrations take seconds) before the clock starts. End to end is until `flush_async_logging()` and
`end_run()` return; the points stored are counted in the `metrics` table afterwards. The runs
workload is many short runs into the same store.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from typing import Iterator

import _common
import mlflow
from mlflow.entities import Metric


def open_store(store: str | None, server: str | None) -> str | None:
    """Log to ``server`` (a tracking server's URL) if given, else to ``<store>/mlflow.db``; that
    database's path (``None`` for a server: the runner counts what it stored)."""
    path = None
    if server:
        mlflow.set_tracking_uri(server)
    else:
        os.makedirs(store, exist_ok=True)
        path = os.path.join(store, "mlflow.db")
        mlflow.set_tracking_uri(f"sqlite:///{path}")
    mlflow.set_experiment(_common.EXPERIMENT)  # creates the schema: not part of the logging cost
    return path


@contextlib.contextmanager
def logged_run(run_ids: list[str]) -> Iterator[None]:
    """An MLflow run, flushed when the block ends; its id goes into ``run_ids``."""
    with mlflow.start_run(run_name=_common.run_name("mlflow")) as run:
        run_ids.append(run.info.run_id)
        yield
        mlflow.flush_async_logging()  # end_run flushes too; said here so the intent is plain


def log(name: str, value: float, step: int) -> None:
    mlflow.log_metric(name, value, step=step, synchronous=False)


class Batches:
    """The ``batch`` variant: points gathered and sent by ``log_batch``, 1,000 a call, synchronously
    (MLflow's own way to log many points at once)."""

    def __init__(self) -> None:
        self.client = mlflow.MlflowClient()
        self.metrics: list[Metric] = []

    def log(self, name: str, value: float, step: int) -> None:
        self.metrics.append(Metric(name, value, int(time.time() * 1000), step))
        if len(self.metrics) == 1_000:
            self.flush()

    def flush(self) -> None:
        if self.metrics:
            self.client.log_batch(mlflow.active_run().info.run_id, metrics=self.metrics)
            self.metrics = []


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    path = open_store(args.store, args.mlflow)
    cpu = _common.cpu_now()
    run_ids: list[str] = []
    if args.workload == "down":
        mlflow.start_run(run_name=_common.run_name("mlflow"))
        result = _common.server_down(log, mlflow.end_run)
    elif args.workload in ("points", "bursty"):
        started = time.perf_counter()
        with logged_run(run_ids):
            if args.variant == "batch":
                batches = Batches()
                result = _common.log_points(batches.log, args)
                batches.flush()
            else:
                result = _common.log_points(log, args)
        result["e2e_s"] = time.perf_counter() - started
    elif args.workload == "runs":
        result = _common.log_runs(args, lambda: logged_run(run_ids), lambda _: log)
    else:
        result = _common.train(args, lambda: logged_run(run_ids), lambda _, work: _common.logging_step(work, log))
    cpu = _common.cpu_now() - cpu
    if path is None:
        _common.emit(result, cpu)
        return
    with sqlite3.connect(path) as conn:
        (result["delivered_local"],) = conn.execute(
            f"SELECT count(*) FROM metrics WHERE run_uuid IN ({', '.join('?' * len(run_ids))})", run_ids).fetchone()
    _common.emit(result, cpu)


if __name__ == "__main__":
    main()
