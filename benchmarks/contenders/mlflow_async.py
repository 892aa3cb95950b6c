"""MLflow 3.x asynchronous logging: `mlflow.log_metric(..., synchronous=False)` to a local SQLite store.

Runs in benchmarks/.venvs/mlflow. The store is `<--store>/mlflow.db`; its schema is created (the
migrations take seconds) before the clock starts. End to end is until `flush_async_logging()` and
`end_run()` return; the points stored are counted in the `metrics` table afterwards.
"""

from __future__ import annotations

import os
import sqlite3
import time

import _common
import mlflow


def open_store(store: str) -> str:
    os.makedirs(store, exist_ok=True)
    path = os.path.join(store, "mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{path}")
    mlflow.set_experiment(_common.EXPERIMENT)  # creates the schema: not part of the logging cost
    return path


def logged_run(step_loop) -> tuple[dict, str]:
    """Run `step_loop()` inside an MLflow run; return its result with the end-to-end time."""
    started = time.perf_counter()
    with mlflow.start_run(run_name=_common.run_name("mlflow")) as run:
        result = step_loop()
        mlflow.flush_async_logging()  # end_run flushes too; said here so the intent is plain
    return {**result, "e2e_s": time.perf_counter() - started}, run.info.run_id


def log(name: str, value: float, step: int) -> None:
    mlflow.log_metric(name, value, step=step, synchronous=False)


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    path = open_store(args.store)
    cpu = _common.cpu_now()
    if args.workload == "points":
        result, run_id = logged_run(lambda: _common.log_points(log, args))
    else:
        work = _common.matmul_work(args.matmul)

        def step(i: int) -> None:
            work()
            for name in _common.METRICS:
                log(name, 0.5, i)

        off = [_common.train_phase(lambda i: work(), args)]
        on, run_id = logged_run(lambda: {"on": _common.train_phase(step, args)})
        off.append(_common.train_phase(lambda i: work(), args))
        result = {**_common.train_result(off, on.pop("on")), **on}
    cpu = _common.cpu_now() - cpu
    with sqlite3.connect(path) as conn:
        (result["delivered_local"],) = conn.execute("SELECT count(*) FROM metrics WHERE run_uuid = ?",
                                                    (run_id,)).fetchone()
    _common.emit(result, cpu)


if __name__ == "__main__":
    main()
