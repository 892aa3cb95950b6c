"""sagerun side by side with the SageMaker SDK and MLflow, in one run on this machine (issue 6).

    bash benchmarks/setup_contenders.sh        # once: a venv per contender under benchmarks/.venvs/
    .venv/bin/python benchmarks/compare.py [--quick] [--only SUBSTRING]

Each row runs one contender script (benchmarks/contenders/) in its own process and venv, which prints
one JSON line of figures; the runner adds what only it can see (the points the metrics fake
received), checks that no point was lost, prints one table and the issue's targets as met or missed,
and writes everything to benchmarks/results/compare-<time>.json. Endpoints, each in its own process
on 127.0.0.1: the recording metrics fake at 0 ms and at 20 ms of added latency, and a moto server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _endpoints import fake_reset, fake_stats, metrics_fake, moto_reset, moto_server  # noqa: E402

HERE = Path(__file__).resolve().parent
SAGERUN_PY = sys.executable
VENVS = HERE / ".venvs"
ROW_TIMEOUT = 600  # seconds: a hung contender fails its row instead of the whole run

# The training step: one float32 matmul of this side takes ~2 ms on this machine with one BLAS thread,
# so that logging 10 metrics a step is ~5,000 points/s, the rate of the issue's slowdown target.
MATMUL = 400


@dataclass
class Row:
    contender: str
    script: str
    python: str = SAGERUN_PY
    variant: str = ""
    workload: str = "points"
    sink: str = "fake"        # "fake", "local" (a fresh store folder), "mlflow" (the MLflow server) or "none"
    latency: int = 0          # ms added by the fake
    steps: int = 10_000       # of 10 metrics each (workload "runs": runs of 100 points each)
    deadline: float = 60.0    # seconds any one logging loop may run
    queue: int = 0            # sagerun's queue_capacity (0: room for the whole workload)
    sender: str = ""          # sagerun's Session.sender ("": its default, the sender process)
    system: bool = False      # sagerun's Session(system_metrics=True), sampled every second
    timeout: int = ROW_TIMEOUT
    result: dict = field(default_factory=dict)

    @property
    def where(self) -> str:
        return {"fake": f"fake {self.latency} ms", "local": "local store", "mlflow": "mlflow server",
                "none": "-"}[self.sink]


def million_rows() -> list[Row]:
    """1M points against the 20 ms fake with sagerun's default queue of 100,000 points: the caller
    blocks on the full queue, and peak RSS must follow the queue's capacity, not the points.
    ~2 min a row, so only with --million."""
    return [Row(f"sagerun {v}, queue 100k", "sagerun_run.py", variant=v, latency=20, steps=100_000, deadline=300,
                queue=100_000) for v in ("sync", "numpy")]


def mlflow_rows(quick: bool) -> list[Row]:
    """Issue 14: sagerun's mlflow backend and MLflow's own client, logging to one MLflow server
    (SQLite store) in its own process; and the server's ceiling, a plain client posting 1,000-metric
    log-batch requests back to back."""
    mlf = str(VENVS / "mlflow/bin/python")
    n = 300 if quick else 3_000
    table = [Row("plain log-batch client (ceiling)", "mlflow_ceiling.py", mlf, sink="mlflow", steps=n * 3)]
    table += [Row(f"sagerun {v}", "sagerun_run.py", variant=v, sink="mlflow", steps=n * 3) for v in ("sync", "numpy")]
    table += [Row("MLflow 3.x async", "mlflow_async.py", mlf, sink="mlflow", steps=n // 10),
              Row("MLflow 3.x log_batch", "mlflow_async.py", mlf, variant="batch", sink="mlflow", steps=n * 3)]
    train = dict(workload="train", sink="mlflow", steps=2_000 if not quick else 300, deadline=5)
    table += [Row("sagerun sync", "sagerun_run.py", variant="sync", **train),
              Row("MLflow 3.x async", "mlflow_async.py", mlf, **{**train, "deadline": 3})]
    down = dict(workload="down", sink="mlflow", timeout=120)
    table += [Row("sagerun sync", "sagerun_run.py", variant="sync", **down),
              Row("MLflow 3.x async", "mlflow_async.py", mlf, **down)]
    return table


def rows(quick: bool, mlflow_points: int) -> list[Row]:
    sm, mlf = str(VENVS / "sagemaker/bin/python"), str(VENVS / "mlflow/bin/python")
    n = 1_000 if quick else 10_000
    table = [Row("fake ceiling (aiohttp, 32 in flight)", "fake_ceiling.py", deadline=3),
             Row("deque.append floor", "floor.py", sink="none", steps=n)]
    for latency in (0, 20):
        table += [Row("SageMaker SDK 2.257.7", "sagemaker_sdk.py", sm, latency=latency,
                      steps=n // 2 if latency == 0 else n // 10, deadline=60)]  # 0.1-2 ms a call: bounded
        if latency == 0:
            table += [Row("plain aioboto3 (8 in flight)", "aioboto3_plain.py", steps=n // 5)]
        table += [Row(f"sagerun {v}", "sagerun_run.py", variant=v, latency=latency, steps=n)
                  for v in ("async", "sync", "numpy")]
    table += [Row(f"sagerun {v}", "sagerun_run.py", variant=v, sink="local", steps=n) for v in ("async", "sync", "numpy")]
    # MLflow stores ~50-200 points/s: 3,000 points already take most of a minute to drain.
    if mlflow_points:  # the issue's 100k: ~20 min for MLflow to store them
        table += [Row("MLflow 3.x async", "mlflow_async.py", mlf, sink="local", steps=mlflow_points // 10,
                      deadline=3600, timeout=3600)]
    else:
        table += [Row("MLflow 3.x async", "mlflow_async.py", mlf, sink="local", steps=n // 30)]
    train = dict(workload="train", latency=20, steps=2_000 if not quick else 300, deadline=5)
    table += [Row("deque.append floor", "floor.py", sink="none", **train),
              Row("SageMaker SDK 2.257.7", "sagemaker_sdk.py", sm, **train)]
    table += [Row(f"sagerun {v}", "sagerun_run.py", variant=v, **train) for v in ("async", "sync", "numpy")]
    table += [Row(f"sagerun {v}, inline sender", "sagerun_run.py", variant=v, sender="inline", **train)
              for v in ("async", "sync")]
    # Issue 15: sampled ten times as often as the default, so that a run of seconds holds samples.
    table += [Row(f"sagerun {v}, system metrics", "sagerun_run.py", variant=v, system=True, **train)
              for v in ("sync", "numpy")]
    table += [Row("MLflow 3.x async", "mlflow_async.py", mlf, **{**train, "deadline": 3}, sink="local")]
    # Short runs one after the other: what opening and closing a run costs. MLflow's ~1 s a run is bounded.
    runs = {"workload": "runs", "steps": 10 if quick else 100}
    table += [Row(f"sagerun {v}", "sagerun_run.py", variant=v, latency=20, **runs) for v in ("async", "sync")]
    table += [Row(f"sagerun {v}, inline sender", "sagerun_run.py", variant=v, sender="inline", latency=20, **runs)
              for v in ("async", "sync")]
    table += [Row("SageMaker SDK 2.257.7", "sagemaker_sdk.py", sm, latency=20, **runs)]
    table += [Row(f"sagerun {v}", "sagerun_run.py", variant=v, sink="local", **runs) for v in ("async", "sync")]
    table += [Row("MLflow 3.x async", "mlflow_async.py", mlf, sink="local", **runs, deadline=10 if quick else 60)]
    # 5 bursts (a fifth of the steps each) with 1 s of idle time between them; the SDK's ~2.6 ms a
    # call at 20 ms gets a tenth of the points, as in the points rows.
    bursty = {"workload": "bursty", "latency": 20}
    table += [Row(f"sagerun {v}", "sagerun_run.py", variant=v, steps=n, **bursty) for v in ("async", "sync")]
    table += [Row("SageMaker SDK 2.257.7", "sagemaker_sdk.py", sm, steps=n // 10, **bursty)]
    return table


def run_row(row: Row, fakes: dict[int, str], moto: str, server: Any = None) -> None:
    fake = fakes[row.latency]
    cmd = [row.python, str(HERE / "contenders" / row.script), "--workload", row.workload, "--steps", str(row.steps),
           "--deadline", str(row.deadline), "--matmul", str(MATMUL), "--fake", fake, "--moto", moto]
    if row.sink == "mlflow":
        cmd += ["--mlflow", server.url]
        stored_before = server_points(server)
    if row.variant:
        cmd += ["--variant", row.variant]
    if row.queue:
        cmd += ["--queue", str(row.queue)]
    if row.sender:
        cmd += ["--sender", row.sender]
    if row.system:
        cmd += ["--system-metrics"]
    env = {**os.environ, "SAGEMAKER_SUPPRESS_V2_WARNING": "1", "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryDirectory(prefix="compare-") as store:
        if row.sink in ("local", "mlflow"):
            cmd += ["--store", store]
        fake_reset(fake)
        moto_reset(moto)
        try:
            done = (down_row(cmd, env, row.timeout, server) if row.workload == "down"
                    else subprocess.run(cmd, capture_output=True, text=True, timeout=row.timeout, env=env))
        except subprocess.TimeoutExpired:
            row.result = {"failed": f"timed out after {row.timeout} s"}
            return
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        row.result = {"failed": f"exit {done.returncode}: {done.stderr.strip()[-400:]}"}
        return
    r = json.loads(lines[-1])
    stats = fake_stats(fake)
    if row.sink == "fake":
        r["delivered"] = stats["points"] - stats["system_points"]  # the workload's, as it logged them
        r["system_points"] = stats["system_points"] or None
        if stats["violations"]:
            r["failed"] = f"fake saw {len(stats['violations'])} invalid requests: {stats['violations'][0]}"
    elif row.sink == "mlflow":
        r["delivered"] = server_points(server) - stored_before
    else:
        r["delivered"] = r.get("delivered_local") or 0
    r["lost"] = r["logged"] - r["delivered"] - r.get("kept", 0)  # kept: in sagerun's spool, for sagerun sync
    if r["lost"]:
        r.setdefault("failed", f"{r['lost']} points lost")
    r["loop_us_per_point"] = r["log_s"] / r["logged"] * 1e6 if r["logged"] else None
    r["delivered_per_s"] = r["delivered"] / r["e2e_s"] if r["e2e_s"] else None
    # The train workload's CPU is mostly its matmuls, not the tracker's.
    r["cpu_s_per_m"] = r["cpu_s"] / r["delivered"] * 1e6 if r["delivered"] and row.workload != "train" else None
    row.result = r


def server_points(server: Any) -> int:
    """The metric points the MLflow server's SQLite store holds."""
    with sqlite3.connect(server.root / "mlflow.db") as conn:
        return conn.execute("SELECT count(*) FROM metrics").fetchone()[0]


def down_row(cmd: list[str], env: dict[str, str], timeout: float, server: Any) -> subprocess.CompletedProcess:
    """The down workload: the server is killed once the contender says it is logging, and started
    again once the contender has closed (or timed out)."""
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        if first.strip() == "LOGGING":
            server.kill()
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    finally:
        server.restart()
    return subprocess.CompletedProcess(cmd, process.returncode, first + out, err)


def find(table: list[Row], contender: str, workload: str = "points", where: str | None = None) -> dict:
    for row in table:
        if row.contender == contender and row.workload == workload and (where is None or row.where == where):
            return row.result
    return {}


def add_ratios(table: list[Row]) -> None:
    """Against the sagerun async row of the same workload and sink, measured in this run. The caller's
    cost of the runs workload is a whole run's."""
    for row in table:
        ref = find(table, "sagerun async", row.workload, row.where)
        r = row.result
        cost = "per_run_ms" if row.workload == "runs" else "call_mean_us"
        if ref and "failed" not in r:
            if r.get(cost) is not None and ref.get(cost):
                r["caller_vs_sagerun"] = r[cost] / ref[cost]
            if r.get("delivered_per_s") and ref.get("delivered_per_s"):
                r["rate_vs_sagerun"] = r["delivered_per_s"] / ref["delivered_per_s"]


def targets(table: list[Row]) -> list[tuple[str, str, bool | None]]:
    """The issue's targets: (what, the figures, met?). None: not measured in this run."""
    out: list[tuple[str, str, bool | None]] = []

    def get(contender: str, key: str, workload: str = "points", where: str | None = None) -> float | None:
        r = find(table, contender, workload, where)
        return None if "failed" in r else r.get(key)

    def check(what: str, value: float | None, limit: float, below: bool, fmt: str) -> None:
        if value is None:
            out.append((what, "not measured", None))
        else:
            out.append((what, fmt.format(value), value <= limit if below else value >= limit))

    floor = get("deque.append floor", "call_mean_us")
    for latency in (0, 20):
        where = f"fake {latency} ms"
        sync, asyn = get("sagerun sync", "call_mean_us", where=where), get("sagerun async", "call_mean_us", where=where)
        sm = get("SageMaker SDK 2.257.7", "call_mean_us", where=where)
        check(f"sync log_metric ≤ 4× floor ({where})", sync / floor if sync and floor else None, 4, True, "{:.1f}×")
        check(f"async log_metric ≤ 6× floor ({where})", asyn / floor if asyn and floor else None, 6, True, "{:.1f}×")
        check(f"numpy log_metrics ≤ 0.1 µs/point ({where})", get("sagerun numpy", "call_mean_us", where=where),
              0.1, True, "{:.3f} µs")
        need = 100 if latency == 0 else 1000
        check(f"SDK caller cost / sagerun sync > {need}× ({where})", sm / sync if sm and sync else None, need, False,
              "{:,.0f}×")
    sm_rate = get("SageMaker SDK 2.257.7", "delivered_per_s", where="fake 20 ms")
    for variant in ("async", "sync"):
        rate = get(f"sagerun {variant}", "delivered_per_s", where="fake 20 ms")
        check(f"delivery at 20 ms ≥ 15× SDK (sagerun {variant})", rate / sm_rate if rate and sm_rate else None, 15,
              False, "{:.1f}×")
    base = get("plain aioboto3 (8 in flight)", "cpu_s_per_m", where="fake 0 ms")
    for variant in ("async", "sync"):
        cpu = get(f"sagerun {variant}", "cpu_s_per_m", where="fake 0 ms")
        check(f"points per CPU second at 0 ms ≥ 3× plain aioboto3 (sagerun {variant})",
              base / cpu if base and cpu else None, 3, False, "{:.1f}×")
    for variant in ("async", "sync", "numpy"):
        slow = get(f"sagerun {variant}", "slowdown_pct", "train")
        rate = get(f"sagerun {variant}", "points_per_s_logged", "train")
        what = ("training-loop slowdown ≤ 2% at 20 ms, median of 3 rounds "
                f"(sagerun {variant}, {rate or 0:,.0f} points/s logged)")
        check(what, slow, 2, True, "{:+.1f}%")
    for variant in ("sync", "numpy"):
        slow, base = get(f"sagerun {variant}, system metrics", "slowdown_pct", "train"), \
            get(f"sagerun {variant}", "slowdown_pct", "train")
        check(f"system metrics every 1 s add ≤ 1 point of slowdown (sagerun {variant}, "
              f"{get(f'sagerun {variant}, system metrics', 'system_points', 'train') or 0} points sampled)",
              slow - base if slow is not None and base is not None else None, 1, True, "{:+.1f}")
    for variant in ("async", "sync"):
        check(f"CPU per delivered point at 0 ms ≤ 35 µs, sender process's counted (sagerun {variant})",
              get(f"sagerun {variant}", "cpu_s_per_m", where="fake 0 ms"), 35, True, "{:.1f} µs")
    for variant in ("async", "sync", "numpy"):
        check(f"sender process peak RSS ≤ 50 MiB (sagerun {variant}, fake 20 ms)",
              get(f"sagerun {variant}", "sender_rss_mib", where="fake 20 ms"), 50, True, "{:.0f} MiB")
        check(f"sender process ready ≤ 0.3 s (sagerun {variant}, fake 20 ms)",
              get(f"sagerun {variant}", "sender_ready_s", where="fake 20 ms"), 0.3, True, "{:.2f} s")
    mlf_rate = get("MLflow 3.x async", "delivered_per_s", where="local store")
    mlf_rss = get("MLflow 3.x async", "peak_rss_mib", where="local store")
    for variant in ("async", "sync", "numpy"):
        rate = get(f"sagerun {variant}", "delivered_per_s", where="local store")
        rss = get(f"sagerun {variant}", "peak_rss_mib", where="local store")
        check(f"local store ≥ 100× MLflow points/s (sagerun {variant})", rate / mlf_rate if rate and mlf_rate else None,
              100, False, "{:,.0f}×")
        check(f"local store peak RSS ≤ 1/10 of MLflow's (sagerun {variant})",
              rss / mlf_rss if rss and mlf_rss else None, 0.1, True, "{:.2f}×")
    failed = [f"{r.contender} / {r.workload} / {r.where}" for r in table if "failed" in r.result]
    out.append(("zero points lost in every row", "; ".join(failed) or "all rows", not failed))
    for variant in ("sync", "numpy"):
        rss = get(f"sagerun {variant}, queue 100k", "peak_rss_mib", where="fake 20 ms")
        small = get(f"sagerun {variant}", "peak_rss_mib", where="fake 20 ms")  # 100k points, same queue size
        check(f"peak RSS with 1M points ≤ 1.25× that of 100k points, same queue (sagerun {variant}, --million)",
              rss / small if rss and small else None, 1.25, True, "{:.2f}×")
    return out


def fmt(value: object, spec: str) -> str:
    """``value`` in ``spec``; a missing one as "-" in the same width, so the columns stay aligned."""
    return format(value, spec) if value is not None else "-".rjust(len(format(0.0, spec)))


def print_table(table: list[Row]) -> None:
    head = (f"{'contender':<37}{'workload':<9}{'where':<12}{'logged':>8}{'lost':>6}{'call µs':>9}{'p50':>8}"
            f"{'p99':>9}{'loop µs':>9}{'run ms':>8}{'e2e s':>8}{'pts/s':>11}{'CPU s/M':>9}{'RSS MiB':>8}{'slow %':>8}"
            f"{'caller×':>8}{'rate×':>7}{'sender MiB':>11}{'ready s':>8}")
    print(head)
    for row in table:
        r = row.result
        if "logged" not in r:
            print(f"{row.contender:<37}{row.workload:<9}{row.where:<12} FAILED: {r.get('failed')}")
            continue
        print(f"{row.contender:<37}{row.workload:<9}{row.where:<12}{r['logged']:>8,}{r['lost']:>6}"
              f"{fmt(r.get('call_mean_us'), '9.3f')}{fmt(r.get('call_p50_us'), '8.3f')}{fmt(r.get('call_p99_us'), '9.1f')}"
              f"{fmt(r.get('loop_us_per_point'), '9.2f')}{fmt(r.get('per_run_ms'), '8.1f')}{r['e2e_s']:>8.2f}{fmt(r.get('delivered_per_s'), '11,.0f')}"
              f"{fmt(r.get('cpu_s_per_m'), '9.1f')}{r['peak_rss_mib']:>8.0f}{fmt(r.get('slowdown_pct'), '+8.1f')}"
              f"{fmt(r.get('caller_vs_sagerun'), '8.2f')}{fmt(r.get('rate_vs_sagerun'), '7.2f')}"
              f"{fmt(r.get('sender_rss_mib'), '11.0f')}{fmt(r.get('sender_ready_s'), '8.2f')}"
              + (f"  FAILED: {r['failed']}" if "failed" in r else ""))


@contextlib.contextmanager
def tracking_server(wanted: bool) -> Iterator[Any]:
    """An MLflow server (tests/mlflow_server.py) in its own process, if any row logs to one."""
    if not wanted:
        yield None
        return
    sys.path.insert(0, str(HERE.parent / "tests"))
    from mlflow_server import MlflowServer

    with tempfile.TemporaryDirectory(prefix="compare-mlflow-") as root, MlflowServer(Path(root)) as server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the points and runs, to check the harness")
    parser.add_argument("--only", help="run only the rows whose contender contains this, or whose sink or workload is this")
    parser.add_argument("--mlflow-points", type=int, default=0,
                        help="points for MLflow's row (default 3,330; the issue's 100,000 take ~20 min)")
    parser.add_argument("--million", action="store_true", help="add the 1M-point rows (~4 min more)")
    args = parser.parse_args()
    if not (VENVS / "sagemaker/bin/python").exists() or not (VENVS / "mlflow/bin/python").exists():
        raise SystemExit("run `bash benchmarks/setup_contenders.sh` first")
    table = (rows(args.quick, args.mlflow_points) + (million_rows() if args.million else [])
             + mlflow_rows(args.quick))
    table = [row for row in table
             if not args.only or args.only in row.contender or args.only in (row.where, row.workload)]
    load_before = os.getloadavg()
    started = time.time()
    with moto_server() as moto, metrics_fake(0) as fake0, metrics_fake(20) as fake20, \
            tracking_server(any(row.sink == "mlflow" for row in table)) as server:
        fakes = {0: fake0, 20: fake20}
        for row in table:
            run_row(row, fakes, moto, server)
            print(f"  {row.contender} / {row.workload} / {row.where}: "
                  f"{'FAILED ' + row.result['failed'] if 'failed' in row.result else 'ok'}", file=sys.stderr, flush=True)
    add_ratios(table)
    load_after = os.getloadavg()
    print(f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; {time.time() - started:.0f} s")
    print_table(table)
    print("\ntargets:")
    checks = targets(table)
    for what, figure, met in checks:
        print(f"  {'MET   ' if met else 'MISSED' if met is False else 'n/a   '} {what}: {figure}")
    out = HERE / "results" / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"load_before": load_before, "load_after": load_after, "matmul": MATMUL,
                               "rows": [{**row.__dict__} for row in table],
                               "targets": [{"target": w, "figure": f, "met": m} for w, f, m in checks]}, indent=1))
    print(f"\nwritten to {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
