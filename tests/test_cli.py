"""The ``sagerun`` command as people and scripts use it, run as a subprocess: ``python -m sagerun``."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import orjson
import pytest

import sagerun


def run_cli(*args: str, env: dict[str, str | None] | None = None, status: int = 0,
            cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    """``sagerun ARGS`` in a subprocess, with ``env`` over this process's environment (``None``
    removes a variable); fails the test unless it exits with ``status``."""
    merged = {**os.environ, **(env or {})}
    done = subprocess.run([sys.executable, "-m", "sagerun", *args], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in merged.items() if v is not None}, cwd=cwd)
    assert done.returncode == status, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return done


NOW = time.time()
LOSS = np.array([2.5, 1.25, 0.625, 0.3125])


async def _log_runs(store: str) -> None:
    session = sagerun.Session(backend="local", store=store)
    for experiment, run_name, lr in (("vision", "baseline", 0.1), ("vision", "wide", 0.3), ("audio", "baseline", 0.1)):
        async with sagerun.Run(experiment, run_name, session=session) as run:
            run.log_parameters({"lr": lr, "layers": 4})
            await run.log_metrics({"loss": LOSS * lr}, step=np.arange(4), timestamp=NOW - 100 + np.arange(4.0))
            await run.log_metric("accuracy", 0.9 if run_name == "wide" else 0.8, timestamp=NOW)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store with runs vision/baseline, vision/wide and audio/baseline."""
    path = str(tmp_path_factory.mktemp("cli") / "store")
    anyio.run(_log_runs, path)
    return path


NO_HOME: dict[str, str | None] = {"SAGERUN_HOME": None}  # the store is then ./sagerun, as for a new user


def test_demo_trains_logs_and_says_how_to_look(tmp_path: Path) -> None:
    started = time.monotonic()
    out = run_cli("demo", "--epochs", "5", cwd=str(tmp_path), env=NO_HOME).stdout
    assert time.monotonic() - started < 30
    lines = out.splitlines()
    assert lines[0].startswith("Trained a logistic regression on scikit-learn's digits: 5 epochs, 115 steps")
    assert lines[1].startswith("Logged run sagerun-demo/digits-") and lines[1].endswith(
        f"to the local store {tmp_path / 'sagerun'}/sagerun.db")
    command = lines[2].removeprefix("See it with:  ").split()
    assert command[:2] == ["sagerun", "show"] and len(command) == 3  # the default store: no --store needed
    assert lines[4].startswith("Browse it:  sagerun ui  (")

    shown = orjson.loads(run_cli(*command[1:], "--json", cwd=str(tmp_path), env=NO_HOME).stdout)
    assert shown["status"] == "Completed"
    assert shown["parameters"]["epochs"] == 5 and shown["parameters"]["batch_size"] == 64
    counts = {m["name"]: m["count"] for m in shown["metrics"]}
    assert counts == {"train:loss": 115, "train:accuracy": 5, "val:loss": 5, "val:accuracy": 5}
    accuracy = next(m for m in shown["metrics"] if m["name"] == "val:accuracy")
    assert accuracy["last"] > 0.9  # it really learns


def test_demo_json_and_an_explicit_store(tmp_path: Path) -> None:
    result = orjson.loads(run_cli("demo", "--epochs", "1", "--store", str(tmp_path / "s"), "--json").stdout)
    assert result["store"] == str(tmp_path / "s") and result["steps"] == 23
    assert result["show"] == f"sagerun show sagerun-demo/{result['run']} --store {tmp_path / 's'}"
    assert result["ui"] == f"sagerun ui --store {tmp_path / 's'}"


def test_runs_lists_runs_in_a_table_and_as_json(store: str) -> None:
    table = run_cli("runs", "--store", store).stdout
    rows = [line for line in table.splitlines() if "baseline" in line or "wide" in line]
    assert len(rows) == 3 and all("Completed" in row for row in rows)
    assert "│ vision     │ wide     │ Completed │" in table
    listed = orjson.loads(run_cli("runs", "vision", "--store", store, "--json").stdout)
    assert [(r["experiment"], r["run"], r["metric_count"], r["point_count"]) for r in listed] == [
        ("vision", "wide", 2, 5), ("vision", "baseline", 2, 5)]  # newest first


def test_show_prints_parameters_and_metric_summaries(store: str) -> None:
    out = run_cli("show", "vision/wide", "--store", store).stdout
    assert out.startswith("vision/wide  Completed  started ")
    assert "│ lr        │ 0.3   │" in out
    assert "│ loss     │ 0.09375 │ 3    │ 0.09375 │ 0.75 │ 4     │" in out
    shown = orjson.loads(run_cli("show", "wide", "--store", store, "--json").stdout)
    assert shown["parameters"] == {"layers": 4, "lr": 0.3}
    assert shown["metrics"] == [
        {"name": "accuracy", "count": 1, "min": 0.9, "max": 0.9, "last": 0.9, "last_step": None,
         "last_timestamp": shown["metrics"][0]["last_timestamp"]},
        {"name": "loss", "count": 4, "min": 0.09375, "max": 0.75, "last": 0.09375, "last_step": 3,
         "last_timestamp": shown["metrics"][1]["last_timestamp"]},
    ]


def test_compare_puts_runs_side_by_side(store: str) -> None:
    out = run_cli("compare", "vision/baseline", "wide", "--store", store).stdout
    header = next(line for line in out.splitlines() if "vision/baseline" in line)
    assert header.index("vision/baseline") < header.index("vision/wide")
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines()]
    assert ["parameter lr", "0.1", "0.3"] in cells and ["parameter layers", "4", "4"] in cells
    assert ["metric loss", "0.03125", "0.09375"] in cells and ["status", "Completed", "Completed"] in cells
    compared = orjson.loads(run_cli("compare", "vision/baseline", "vision/wide", "--store", store, "--json").stdout)
    assert [(r["run"], r["parameters"]["lr"], r["metrics"]) for r in compared["runs"]] == [
        ("baseline", 0.1, {"accuracy": 0.8, "loss": 0.03125}), ("wide", 0.3, {"accuracy": 0.9, "loss": 0.09375})]


def test_export_csv_and_json_hold_every_point_exactly(store: str, tmp_path: Path) -> None:
    rows = list(csv.reader(io.StringIO(run_cli("export", "vision/wide", "--store", store).stdout)))
    assert rows[0] == ["metric", "step", "timestamp", "value"]
    expected = [("accuracy", "", NOW, 0.9)] + [("loss", str(s), NOW - 100 + s, LOSS[s] * 0.3) for s in range(4)]
    assert [(m, s, float(t), float(v)) for m, s, t, v in rows[1:]] == expected

    target = tmp_path / "wide.json"
    done = run_cli("export", "vision/wide", "--format", "json", "--output", str(target), "--store", store)
    assert done.stdout == "" and done.stderr == f"wrote 5 points of vision/wide to {target}\n"
    exported: Any = orjson.loads(target.read_bytes())
    assert exported["parameters"] == {"layers": 4, "lr": 0.3} and exported["status"] == "Completed"
    assert exported["metrics"] == [
        {"name": "accuracy", "steps": [None], "timestamps": [NOW], "values": [0.9]},
        {"name": "loss", "steps": [0, 1, 2, 3], "timestamps": (NOW - 100 + np.arange(4.0)).tolist(),
         "values": (LOSS * 0.3).tolist()},
    ]
    assert orjson.loads(run_cli("export", "vision/wide", "--json", "--store", store).stdout) == exported


@pytest.mark.parametrize("args, message", [
    (["show", "baseline"], "Error: 'baseline' names 2 runs: audio/baseline, vision/baseline; "
                           "name one as EXPERIMENT/RUN\n"),
    (["show", "vision/narrow"], "Error: no run named 'vision/narrow' in the local store: `sagerun runs` lists them\n"),
    (["runs", "speech"], "Error: no experiment named 'speech' in the local store; experiments: audio, vision\n"),
    (["export", "wide", "--output", "/nonexistent/dir/x.csv"], None),
])
def test_errors_are_one_line_and_a_failing_status(store: str, args: list[str], message: str | None) -> None:
    done = run_cli(*args, "--store", store, status=1)
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    if message:
        assert done.stderr == message


def test_a_missing_store_says_what_to_do(tmp_path: Path) -> None:
    for command in (["runs"], ["show", "x"], ["sync"]):
        done = run_cli(*command, status=1, cwd=str(tmp_path), env=NO_HOME)
        assert done.stderr == (f"Error: no local store at {tmp_path / 'sagerun'}: "
                               "run `sagerun demo` or log a run first\n")
    assert not (tmp_path / "sagerun").exists()
    assert run_cli("compare", "x", "--store", str(tmp_path), status=2).stderr.endswith(
        "Error: compare needs at least two runs, e.g. `sagerun compare RUN_A RUN_B` or "
        "`sagerun compare --experiment EXPERIMENT`\n")
