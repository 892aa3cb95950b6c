"""The framework integrations in a training loop: steps/s of a Hugging Face ``Trainer.train()`` and a
Lightning ``Trainer.fit()`` with no tracker, with sagerun (``SagerunCallback`` / ``SagerunLogger``)
to the metrics fake at 20 ms and to an MLflow server, and with MLflow's own integration
(``transformers.integrations.MLflowCallback`` / ``lightning.pytorch.loggers.MLFlowLogger``) to the
same server, side by side in one run.

    .venv/bin/python benchmarks/integrations.py [--quick] [--steps N] [--rounds N] [--json benchmarks/results/X.json]

Each training runs in a fresh process of this script (one BLAS thread), started once the machine is
quiet, which prints one JSON line: the wall time of ``train()`` / ``fit()`` alone, the points the
tracker was handed, the time inside the tracker's hooks (the start's, which opens a sagerun run; the
mean of each step's; the end's, which closes it, so delivery is inside ``train()``) and the points
the endpoint held the moment the call returned. The runner counts again once the process has exited:
the fake's distinct points, or the distinct (name, step, value) of the metric histories MlflowClient
reads back. Median of ``--rounds`` rounds, the contenders' order reversed every other round to spread
drift; the slowdown is ``steps/s without tracker / steps/s with - 1``, and again with the start and
end hooks' time taken out. Endpoints, each in its own process on 127.0.0.1 at a lower priority: the
metrics fake (20 ms), a moto server, and ``mlflow server`` (SQLite store). Nothing is written but
temp folders, and ``--json``'s file under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from _endpoints import ENDPOINT_NICENESS, fake_reset, fake_stats, metrics_fake, moto_reset, moto_server  # noqa: E402
from mlflow_server import QUIET_ENV, MlflowServer  # noqa: E402

FRAMEWORKS = ("transformers", "lightning")
CONTENDERS = ("no tracker", "sagerun, fake 20 ms", "sagerun, mlflow server", "mlflow's own, mlflow server")
CHILD_TIMEOUT = 900  # seconds: a hung training fails its round, not the whole run
# One thread everywhere: the two vCPUs are shared with sagerun's sender process and the endpoints.
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
# Before each training, wait up to SETTLE_S for the machine to use less than QUIET_CPUS (the last
# row's server work, or anyone else's); a training that began on a busier machine is counted.
SETTLE_S, QUIET_CPUS = 60.0, 0.5


# -- the child: one training, one contender ------------------------------------------------------

def timed(fn: Callable[..., Any], into: list[int], points: Callable[..., Iterable[tuple]] | None = None,
          seen: set[tuple] | None = None) -> Callable[..., Any]:
    """``fn``, with each call's nanoseconds appended to ``into`` (and the points ``points(*args)``
    names added to ``seen``): a perf_counter_ns pair, ~0.1 µs, against hooks of tens of µs."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        begin = time.perf_counter_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            into.append(time.perf_counter_ns() - begin)
            if points is not None and seen is not None:
                seen.update(points(*args, **kwargs))
    return wrapper


def sagerun_session(spec: dict) -> Any:
    import sagerun

    # store=: the spool (points a server could not take) goes to the temp folder, not ./sagerun.
    if spec["sink"] == "fake":
        return sagerun.Session(backend="sagemaker", region="us-east-1", endpoint_url=spec["moto"],
                               metrics_endpoint_url=spec["fake"], store=spec["store"])
    return sagerun.Session(backend="mlflow", tracking_uri=spec["mlflow"], store=spec["store"])


def transformers_trainer(spec: dict) -> tuple[Callable[[], int], Any, tuple[str, str, str]]:
    """The training (it returns the steps done), its tracker (or None), and the names of the
    tracker's hooks: at the training's start (which opens a sagerun run), every step, and its end."""
    import torch
    import transformers
    from transformers import PretrainedConfig, PreTrainedModel

    class LineConfig(PretrainedConfig):
        model_type = "bench-line"

    class LineModel(PreTrainedModel):
        config_class = LineConfig

        def __init__(self, config: LineConfig) -> None:
            super().__init__(config)
            self.a = torch.nn.Parameter(torch.tensor(0.0))
            self.b = torch.nn.Parameter(torch.tensor(0.0))
            self.post_init()

        def _init_weights(self, module: Any) -> None:
            pass  # a and b start at 0: nothing to initialise

        def forward(self, x: Any, labels: Any = None, **kwargs: Any) -> Any:
            y = self.a * x + self.b
            return (y,) if labels is None else (torch.nn.functional.mse_loss(y, labels), y)

    class Line(torch.utils.data.Dataset):
        def __init__(self, n: int) -> None:
            self.x = torch.randn(n, generator=torch.Generator().manual_seed(0))
            self.y = 2 * self.x + 3

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i: int) -> dict:
            return {"x": self.x[i], "labels": self.y[i]}

    args = transformers.TrainingArguments(
        output_dir=spec["tmp"], max_steps=spec["steps"], logging_steps=1, report_to="none", use_cpu=True,
        disable_tqdm=True, save_strategy="no", eval_strategy="no", per_device_train_batch_size=8,
        run_name=spec["run"])
    callback: Any = None
    if spec["contender"].startswith("sagerun"):
        from sagerun.integrations.transformers import SagerunCallback
        callback = SagerunCallback(experiment_name=spec["experiment"], run_name=spec["run"],
                                   session=sagerun_session(spec))
    elif spec["contender"].startswith("mlflow"):
        callback = transformers.integrations.MLflowCallback()
    # One epoch holds every step: the figure is the steps', not the epoch boundaries'.
    trainer = transformers.Trainer(model=LineModel(LineConfig()), args=args, train_dataset=Line(spec["steps"] * 8),
                                   callbacks=[callback] if callback else None)

    def train() -> int:
        trainer.train()
        return trainer.state.global_step
    return train, callback, ("on_train_begin", "on_log", "on_train_end")


def lightning_trainer(spec: dict) -> tuple[Callable[[], int], Any, tuple[str, str, str]]:
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader

    class Boring(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(32, 2)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            out = self.layer(batch)
            loss = torch.nn.functional.mse_loss(out, torch.ones_like(out))
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self) -> Any:
            return DataLoader(torch.randn(spec["steps"] * 2, 32, generator=torch.Generator().manual_seed(0)),
                              batch_size=2)

    logger: Any = False
    if spec["contender"].startswith("sagerun"):
        from sagerun.integrations.lightning import SagerunLogger
        logger = SagerunLogger(experiment_name=spec["experiment"], run_name=spec["run"], session=sagerun_session(spec))
    elif spec["contender"].startswith("mlflow"):
        from lightning.pytorch.loggers import MLFlowLogger
        logger = MLFlowLogger(experiment_name=spec["experiment"], run_name=spec["run"], tracking_uri=spec["mlflow"])
    trainer = pl.Trainer(max_steps=spec["steps"], log_every_n_steps=1, accelerator="cpu", devices=1, logger=logger,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=spec["tmp"])
    module = Boring()

    def fit() -> int:
        trainer.fit(module)
        return trainer.global_step
    # Lightning opens a logger's run by reading its ``experiment`` in the setup hook (and this module
    # has no hyperparameters, so log_hyperparams is never called).
    return fit, logger or None, ("experiment", "log_metrics", "finalize")


# MLflow's own integrations' points as (name, step, value): MLflow stores a point equal to another
# in the same millisecond once (its primary key), and the Trainer's summary repeats the last step's
# epoch, so both sides of an MLflow row count distinct (name, step, value).

def numeric_logs(args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> Iterable[tuple]:
    """What MLflowCallback.on_log logs of a Trainer's logs: ints, floats and one-element tensors."""
    return [(k, state.global_step, float(v)) for k, v in (logs or {}).items()
            if isinstance(v, (int, float)) or getattr(v, "numel", lambda: 0)() == 1]


def non_string_metrics(metrics: dict, step: Any = None) -> Iterable[tuple]:
    """What MLFlowLogger.log_metrics logs: every value but a string."""
    return [(k, step or 0, float(v)) for k, v in metrics.items() if not isinstance(v, str)]


def child(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    train, tracker, (begin_hook, hook, end) = (transformers_trainer if spec["framework"] == "transformers"
                                               else lightning_trainer)(spec)
    begin_ns, hook_ns, end_ns = [], [], []
    seen: set[tuple] = set()
    if tracker is not None:
        mlflow_own = spec["contender"].startswith("mlflow")
        points = (numeric_logs if spec["framework"] == "transformers" else non_string_metrics) if mlflow_own else None
        cls = type(tracker)
        if isinstance(getattr(cls, begin_hook), property):  # a property cannot be wrapped on the instance
            wrapped = property(timed(getattr(cls, begin_hook).fget, begin_ns))
            tracker.__class__ = type(cls.__name__, (cls,), {begin_hook: wrapped})
        else:
            setattr(tracker, begin_hook, timed(getattr(tracker, begin_hook), begin_ns))
        setattr(tracker, hook, timed(getattr(tracker, hook), hook_ns, points, seen))
        setattr(tracker, end, timed(getattr(tracker, end), end_ns))
    begin = time.perf_counter()
    steps = train()
    train_s = time.perf_counter() - begin
    result = {"steps": steps, "train_s": train_s, "hook_us": statistics.mean(hook_ns) / 1e3 if hook_ns else None,
              "begin_s": sum(begin_ns) / 1e9 if begin_ns else None, "end_s": sum(end_ns) / 1e9 if end_ns else None}
    if tracker is None:
        return result
    if spec["contender"].startswith("sagerun"):
        result.update(logged=tracker.stats.points, closed=tracker.run is None, errors=tracker.stats.errors,
                      skipped=tracker.stats.skipped)
    else:
        result.update(logged=len(seen), closed=True, errors=0, skipped=0)
    # Read once train() has returned, before this process exits (which may flush what is left).
    result["at_return"] = (distinct(spec["fake"]) if spec["sink"] == "fake"
                           else mlflow_points(spec["mlflow"], spec["experiment"]))
    return result


def distinct(fake: str) -> int:
    """The fake's distinct points (a point sent again is one), without system metrics (none here)."""
    stats = fake_stats(fake)
    return stats["distinct_points"] - stats["system_points"]


def mlflow_points(url: str, experiment: str) -> int:
    """The distinct (name, step, value) of every metric history of every run of ``experiment``, as
    MlflowClient reads them."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return 0
    return len({(key, m.step, m.value) for run in client.search_runs([found.experiment_id]) for key in run.data.metrics
                for m in client.get_metric_history(run.info.run_id, key)})


# -- the runner ----------------------------------------------------------------------------------

def busy_cpus(window: float = 1.0) -> float:
    """CPUs in use over ``window`` seconds, the whole machine's (user, nice, system, irq, steal)."""
    def ticks() -> int:
        with open("/proc/stat") as stat:
            fields = [int(f) for f in stat.readline().split()[1:]]
        return sum(fields) - fields[3] - fields[4]  # not idle, not iowait
    before = ticks()
    time.sleep(window)
    return (ticks() - before) / os.sysconf("SC_CLK_TCK") / window


def settle() -> float:
    """Wait for a quiet machine; the CPUs in use when the wait ended."""
    deadline = time.monotonic() + SETTLE_S
    while (busy := busy_cpus()) >= QUIET_CPUS and time.monotonic() < deadline:
        pass
    return busy


def run_round(framework: str, contender: str, steps: int, endpoints: dict) -> dict:
    sink = "fake" if "fake" in contender else "mlflow" if "mlflow" in contender else "none"
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="bench-integrations-") as tmp:
        spec = {"framework": framework, "contender": contender, "sink": sink, "steps": steps, "tmp": tmp,
                "store": os.path.join(tmp, "sagerun"), "experiment": f"bench-{framework}-{tag}",
                "run": f"{re.sub(r'[^a-z0-9]+', '-', contender)}-{tag}", **endpoints}
        env = {**os.environ, **THREAD_ENV, **QUIET_ENV, "PYTHONWARNINGS": "ignore",
               "SAGERUN_HOME": spec["store"], "MLFLOW_TRACKING_URI": endpoints["mlflow"],
               "MLFLOW_EXPERIMENT_NAME": spec["experiment"]}
        if sink == "fake":
            fake_reset(endpoints["fake"])
            moto_reset(endpoints["moto"])
        busy = settle()
        try:
            # The cwd is the temp folder: whatever a framework writes beside it (mlruns/, lightning_logs/) goes too.
            done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
                                  capture_output=True, text=True, timeout=CHILD_TIMEOUT, env=env, cwd=tmp)
        except subprocess.TimeoutExpired:
            return {"failed": f"timed out after {CHILD_TIMEOUT} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"failed": f"exit {done.returncode}: {done.stderr.strip()[-600:]}"}
    r = json.loads(lines[-1])
    r["busy_before"] = busy
    r["steps_per_s"] = r["steps"] / r["train_s"]
    # Without the run's opening and closing: what the steps themselves pay for the tracker.
    r["inner_per_s"] = r["steps"] / (r["train_s"] - (r.get("begin_s") or 0) - (r.get("end_s") or 0))
    if sink == "fake":
        r["delivered"] = distinct(endpoints["fake"])
        if violations := fake_stats(endpoints["fake"])["violations"]:
            r["failed"] = f"the fake saw {len(violations)} invalid requests: {violations[0]}"
    elif sink == "mlflow":
        r["delivered"] = mlflow_points(endpoints["mlflow"], spec["experiment"])
    if sink != "none":
        r["before_return"] = r["closed"] and r["at_return"] == r["logged"] == r["delivered"]
        if r["delivered"] != r["logged"]:
            r.setdefault("failed", f"{r['logged'] - r['delivered']} points not delivered")
    return r


@contextlib.contextmanager
def endpoints() -> Iterator[dict]:
    with moto_server() as moto, metrics_fake(latency_ms=20) as fake, \
            tempfile.TemporaryDirectory(prefix="bench-integrations-mlflow-") as root, \
            MlflowServer(Path(root)) as server:
        # MlflowServer starts the server in a session of its own, so its pid is its process group's
        # id: the whole group is niced, uvicorn's worker included.
        os.setpriority(os.PRIO_PGRP, server._proc.pid, ENDPOINT_NICENESS)
        yield {"moto": moto, "fake": fake, "mlflow": server.url}


def median_row(rounds: list[dict]) -> dict:
    good = [r for r in rounds if "steps_per_s" in r]
    if not good:
        return {"failed": rounds[0].get("failed")}
    rates = [r["steps_per_s"] for r in good]
    row: dict[str, Any] = {"steps_per_s": statistics.median(rates), "rounds": [r.get("steps_per_s") for r in rounds],
                           "failed": "; ".join(sorted({r["failed"] for r in rounds if "failed" in r})) or None}
    for key in ("inner_per_s", "begin_s", "hook_us", "end_s"):
        values = [r[key] for r in good if r.get(key) is not None]
        row[key] = statistics.median(values) if values else None
    if "logged" in good[0]:
        row["logged"] = sum(r["logged"] for r in good)
        row["delivered"] = sum(r["delivered"] for r in good)
        row["before_return"] = sum(bool(r.get("before_return")) for r in good)
        row["errors"] = sum(r["errors"] for r in good)
    row["good"] = len(good)
    return row


def fmt(value: Any, spec: str) -> str:
    """``value`` in ``spec``; a missing one as "-" in the same width, so the columns stay aligned."""
    return format(value, spec) if value is not None else "-".rjust(len(format(0 if "d" in spec else 0.0, spec)))


def print_table(table: dict, rounds: int) -> None:
    print(f"{'framework':<14}{'contender':<30}{'steps/s':>9}  {'rounds':<{8 * rounds}}{'slow %':>8}{'steps %':>8}"
          f"{'logged':>9}{'delivered':>10}  {'all before return':<19}{'begin s':>8}{'hook µs':>9}{'end s':>8}")
    for (framework, contender), row in table.items():
        if "steps_per_s" not in row:
            print(f"{framework:<14}{contender:<30} FAILED: {row['failed']}")
            continue
        base = table[(framework, CONTENDERS[0])].get("steps_per_s")
        slow = inner = None
        if base and contender != CONTENDERS[0]:
            slow, inner = (base / row["steps_per_s"] - 1) * 100, (base / row["inner_per_s"] - 1) * 100
        spread = "".join(fmt(rate, "8.1f") for rate in row["rounds"])
        before = "-" if "logged" not in row else \
            ("yes" if row["before_return"] == row["good"] == rounds else f"no ({row['before_return']}/{rounds} yes)")
        print(f"{framework:<14}{contender:<30}{row['steps_per_s']:>9.1f}  {spread:<{8 * rounds}}{fmt(slow, '+8.1f')}"
              f"{fmt(inner, '+8.1f')}{fmt(row.get('logged'), '9,d')}{fmt(row.get('delivered'), '10,d')}  {before:<19}"
              f"{fmt(row['begin_s'], '8.2f')}{fmt(row['hook_us'], '9.1f')}{fmt(row['end_s'], '8.2f')}"
              + (f"  FAILED: {row['failed']}" if row.get("failed") else "")
              + (f"  ({row['errors']} callback errors)" if row.get("errors") else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 steps, 1 round: to check the harness")
    parser.add_argument("--steps", type=int, help="training steps (default 2000)")
    parser.add_argument("--rounds", type=int, help="rounds per contender (default 3)")
    parser.add_argument("--json", type=Path, help="write the table here, under benchmarks/results/")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return
    steps = args.steps or (200 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 3)
    if args.json is not None:
        results = (HERE / "results").resolve()
        if not args.json.resolve().is_relative_to(results):
            parser.error(f"--json must be under {results}")
    load_before, started = os.getloadavg(), time.time()
    measured: dict[tuple[str, str], list[dict]] = {(f, c): [] for f in FRAMEWORKS for c in CONTENDERS}
    with endpoints() as urls:
        for i in range(rounds):
            order = CONTENDERS if i % 2 == 0 else CONTENDERS[::-1]
            for framework in FRAMEWORKS:
                for contender in order:
                    r = run_round(framework, contender, steps, urls)
                    measured[(framework, contender)].append(r)
                    print(f"  round {i + 1}/{rounds} {framework} / {contender}: "
                          + (f"FAILED {r['failed']}" if "failed" in r else f"{r['steps_per_s']:.1f} steps/s"),
                          file=sys.stderr, flush=True)
    table = {key: median_row(rs) for key, rs in measured.items()}
    load_after = os.getloadavg()
    versions = ", ".join(f"{name} {version(name)}" for name in ("torch", "transformers", "lightning", "mlflow"))
    print(f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, {versions}; "
          f"{steps} steps, {rounds} round(s); load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
          f"{time.time() - started:.0f} s")
    print_table(table, rounds)
    print("\nslow %: steps/s without tracker / steps/s with - 1, medians; steps %: the same with the begin and end"
          "\nhooks' time taken out of train()/fit(). logged, delivered: summed over the rounds."
          "\nall before return: the run closed by the end of train()/fit() and every point at the endpoint then."
          "\nbegin s, hook µs, end s: the tracker's hooks at the start (on_train_begin / every read of experiment),"
          "\neach step (on_log / log_metrics, mean) and the end (on_train_end / finalize), all inside train()/fit().")
    busy = [r["busy_before"] for rs in measured.values() for r in rs if "busy_before" in r]
    noisy = sum(b >= QUIET_CPUS for b in busy)
    print(f"{noisy} of {len(busy)} trainings began on a machine using ≥ {QUIET_CPUS} CPUs after {SETTLE_S:.0f} s"
          + (f" (up to {max(busy):.1f}): their figures carry that load" if noisy else ""))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"framework": f, "contender": c, **table[(f, c)], "raw": measured[(f, c)]} for f, c in table]
        args.json.write_text(json.dumps({"steps": steps, "rounds": rounds, "load_before": load_before,
                                         "load_after": load_after, "rows": rows}, indent=1))
        print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
