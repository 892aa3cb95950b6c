"""Session(system_metrics=True): what the endpoint and the local store receive under ``system/``."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

import psutil
import pytest

import sagerun
import sagerun.sync

CORE = {"cpu_utilization_percentage", "system_memory_usage_megabytes", "system_memory_usage_percentage",
        "disk_usage_percentage", "disk_usage_megabytes", "disk_available_megabytes",
        "process_tree_rss_megabytes", "process_tree_cpu_utilization_percentage"}
TOTAL_MB = psutil.virtual_memory().total / 1e6


def busy(seconds: float) -> bytes:
    """A training loop's stand-in: 80 MB held, and the CPU kept busy. Like a loop whose steps run
    in numpy or torch, it lets other threads run between steps (a loop that never lets go of the
    GIL delays the inline sender's samples, not the sender process's)."""
    held = b"x" * 80_000_000
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        sum(range(20_000))
        time.sleep(0.0005)
    return held


def check_plausible(series: dict[str, list[tuple[int, float]]], *, rss_at_least: float) -> None:
    names = {name.removeprefix("system/") for name in series if name.startswith("system/")}
    assert CORE <= names, f"missing {CORE - names}"
    for name, points in series.items():
        if not name.startswith("system/"):
            continue
        steps = [step for step, _ in points]
        assert steps == sorted(steps) and all(isinstance(s, int) and s >= 0 for s in steps), name
        for _, value in points:
            if name.endswith("percentage"):
                limit = 100.0 * (os.cpu_count() or 1) if "process_tree_cpu" in name else 100.0
                assert 0.0 <= value <= limit, (name, value)
            elif name.endswith("megabytes"):
                assert 0.0 <= value <= max(TOTAL_MB, 1e9), (name, value)
    rss = [value for _, value in series["system/process_tree_rss_megabytes"]]
    assert max(rss) >= rss_at_least and max(rss) < TOTAL_MB
    assert max(value for _, value in series["system/process_tree_cpu_utilization_percentage"]) > 10.0
    assert len(series["system/cpu_utilization_percentage"]) >= 3  # sampled again and again, 0.2 s apart


def test_system_metrics_go_out_from_the_sender_process(session, metrics_fake):
    session = dataclasses.replace(session, system_metrics=True, system_metrics_interval=0.2)
    with sagerun.sync.Run("sys", "sent-aside", session=session) as run:
        for step in range(50):
            run.log_metric("loss", 1 / (step + 1), step=step)
        busy(1.5)
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for point in sorted(metrics_fake.points, key=lambda p: p["timestamp"]):
        assert point["trial_component"] == "sys-sent-aside"
        series[point["name"]].append((point["step"], point["value"]))
    check_plausible(series, rss_at_least=80.0)
    assert len(series["loss"]) == 50
    # ingest_stats counts what the user logged; the system metrics are the run's own.
    assert (run.ingest_stats.enqueued, run.ingest_stats.delivered) == (50, 50)
    assert metrics_fake.violations == []
    assert metrics_fake.stats["system_points"] == sum(len(v) for k, v in series.items() if k.startswith("system/"))


def test_system_metrics_of_an_inline_run_in_the_local_store(tmp_path):
    store = str(tmp_path / "store")
    session = sagerun.Session(backend="local", store=store, system_metrics=True, system_metrics_interval=0.2)
    with sagerun.sync.Run("sys", "local", session=session) as run:
        run.log_metric("loss", 0.5, step=0)
        busy(1.5)
    exported = subprocess.run([sys.executable, "-m", "sagerun", "export", "sys/local", "--format", "json",
                               "--store", store], capture_output=True, text=True, check=True)
    document: Any = json.loads(exported.stdout)
    series = {metric["name"]: list(zip(metric["steps"], metric["values"])) for metric in document["metrics"]}
    check_plausible(series, rss_at_least=80.0)
    shown = subprocess.run([sys.executable, "-m", "sagerun", "show", "sys/local", "--store", store],
                           capture_output=True, text=True, check=True)
    assert "system/cpu_utilization_percentage" in shown.stdout


def test_only_local_rank_zero_of_a_host_samples_it(tmp_path, monkeypatch):
    session = sagerun.Session(backend="local", store=str(tmp_path), system_metrics=True, system_metrics_interval=0.2)
    for rank in ("1", "0"):
        monkeypatch.setenv("LOCAL_RANK", rank)
        with sagerun.sync.Run("sys", f"local-rank-{rank}", session=session) as run:
            run.log_metric("loss", 0.5, step=0)
            busy(0.6)
    rows = {row["run"]: row for row in sagerun.sync.search_runs("sys", session=session, as_frame=False)}
    assert [key for key in rows["local-rank-1"] if key.startswith("metric.system/")] == []
    assert any(key.startswith("metric.system/") for key in rows["local-rank-0"])


def test_nothing_is_sampled_unless_asked(session, metrics_fake):
    with sagerun.sync.Run("sys", "quiet", session=dataclasses.replace(session, system_metrics_interval=0.2)):
        busy(0.6)
    assert not [p for p in metrics_fake.points if p["name"].startswith("system/")]


def test_without_psutil_the_session_says_what_to_install():
    code = ("import sys; sys.modules['psutil'] = None\n"
            "import sagerun\n"
            "try:\n    sagerun.Session(system_metrics=True)\n"
            "except RuntimeError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'sagerun[system]'" in done.stdout
    with pytest.raises(ValueError, match="system_metrics_interval"):
        sagerun.Session(system_metrics=True, system_metrics_interval=0)


def test_gpu_metrics_where_a_gpu_is_present(session, metrics_fake):
    pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed")
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
    except pynvml.NVMLError as exc:
        pytest.skip(f"no NVIDIA GPU here: NVML says {exc}")
    if count == 0:
        pytest.skip("no NVIDIA GPU here: NVML finds none")
    session = dataclasses.replace(session, system_metrics=True, system_metrics_interval=0.2)
    with sagerun.sync.Run("sys", "gpu", session=session):
        busy(1.0)
    names = {p["name"] for p in metrics_fake.points}
    for index in range(count):
        assert f"system/gpu_{index}_utilization_percentage" in names
        assert f"system/gpu_{index}_memory_usage_megabytes" in names


def test_on_mlflow_they_are_the_system_metrics_mlflow_shows(mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    session = sagerun.Session(backend="mlflow", tracking_uri=mlflow_server.url, store=str(tmp_path / "store"),
                              linger=0.005, system_metrics=True, system_metrics_interval=0.2)
    with sagerun.sync.Run("sys-mlflow", "r1", session=session) as run:
        busy(1.5)
    client = MlflowClient(tracking_uri=mlflow_server.url)
    series = {f"system/{name}": [(m.step, m.value) for m in client.get_metric_history(run.trial_component_name,
                                                                                       f"system/{name}")]
              for name in CORE}
    check_plausible(series, rss_at_least=80.0)
