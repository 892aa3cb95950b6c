"""The local store as a user meets it: ``sagerun.Run`` with ``Session(backend="local")``, then what the
store holds, read back through sagerun.store (what the CLI reads)."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sagerun
from sagerun.backends import make_backend
from sagerun._model.records import RunRecord
from sagerun.backends.local import LocalBackend
from sagerun.store import NoStoreError, StoreVersionError, connect, opened
from sagerun.store.queries import AmbiguousRunError, RunNotFoundError, find_run, list_runs, metric_summaries, read_metrics
from sagerun.store.records import load_run


def local(store: Path) -> sagerun.Session:
    return sagerun.Session(backend="local", store=str(store), linger=0.001)


def stored_points(store: Path, ref: str) -> list[tuple[str, float, int | None, float]]:
    """Every point of run ``ref`` as (name, value, step, timestamp), by name then in stored order."""
    with opened(str(store)) as conn:
        return [point for series in read_metrics(conn, find_run(conn, ref).id) for point in series.points()]


def stored_record(store: Path, ref: str) -> RunRecord:
    with opened(str(store)) as conn:
        return load_run(conn, find_run(conn, ref).id)


async def test_round_trip_of_parameters_status_and_exact_points(tmp_path: Path) -> None:
    now = time.time()
    async with sagerun.Run("Digits", "lr-0.1", session=local(tmp_path)) as run:
        run.log_parameters({"lr": 0.1, "epochs": 3, "optimizer": "sgd", "tiny": 1e-300})
        for step in range(5):
            await run.log_metric("train:loss", 1.0 / (step + 1), step=step, timestamp=now - 10 + step)
        await run.log_metric("note", 7.0, timestamp=now)  # no step
        await run.log_metrics({"val:acc": np.array([0.5, 0.75, 0.875])}, step=np.arange(3),
                              timestamp=np.array([now, now + 1, now + 2]))

    assert run.experiment_name == "digits" and run.run_name == "lr-0-1"
    record = stored_record(tmp_path, "digits/lr-0-1")
    assert record.status == "Completed" and record.status_message is None
    assert record.parameters == {"epochs": 3, "lr": 0.1, "optimizer": "sgd", "tiny": 1e-300}
    assert [type(record.parameters[k]) for k in ("epochs", "lr", "optimizer")] == [int, float, str]
    assert record.experiment_display_name == "Digits" and record.run_display_name == "lr-0.1"
    assert record.start_time is not None and record.end_time is not None and record.start_time <= record.end_time
    assert stored_points(tmp_path, "digits/lr-0-1") == [
        ("note", 7.0, None, now),
        *[("train:loss", 1.0 / (s + 1), s, now - 10 + s) for s in range(5)],
        ("val:acc", 0.5, 0, now), ("val:acc", 0.75, 1, now + 1), ("val:acc", 0.875, 2, now + 2),
    ]


async def test_a_failing_training_loop_leaves_a_failed_run_with_its_points(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError):
        async with sagerun.Run("exp", "crash", session=local(tmp_path)) as run:
            await run.log_metric("loss", 0.5, step=0)
            1 / 0
    record = stored_record(tmp_path, "crash")
    assert record.status == "Failed"
    assert record.status_message == "ZeroDivisionError: division by zero"
    assert [p[:3] for p in stored_points(tmp_path, "crash")] == [("loss", 0.5, 0)]


async def test_reopening_a_run_merges_parameters_and_appends_points(tmp_path: Path) -> None:
    async with sagerun.Run("exp", "resumed", session=local(tmp_path)) as run:
        run.log_parameters({"lr": 0.1, "epochs": 3})
        await run.log_metric("loss", 1.0, step=0)
    async with sagerun.Run("exp", "resumed", session=local(tmp_path)) as run:
        assert run.parameters == {"lr": 0.1, "epochs": 3}  # stored ones fill in
        run.log_parameters({"epochs": 6, "resumed": "yes"})  # the run's own win
        await run.log_metric("loss", 0.5, step=1)
    assert stored_record(tmp_path, "resumed").parameters == {"epochs": 6, "lr": 0.1, "resumed": "yes"}
    assert [p[:3] for p in stored_points(tmp_path, "resumed")] == [("loss", 1.0, 0), ("loss", 0.5, 1)]
    with opened(str(tmp_path)) as conn:
        [summary] = metric_summaries(conn, find_run(conn, "resumed").id)
    assert (summary.name, summary.count, summary.min, summary.max, summary.last, summary.last_step) == (
        "loss", 2, 0.5, 1.0, 0.5, 1)


async def test_a_hundred_thousand_points_and_many_metric_names_in_one_batch(tmp_path: Path) -> None:
    values = np.random.default_rng(1).normal(size=100_000)
    async with sagerun.Run("exp", "big", session=local(tmp_path)) as run:
        await run.log_metrics({"grad": values}, step=np.arange(len(values)))
        for i in range(1200):  # more series than one INSERT statement takes
            await run.log_metric(f"layer{i}:norm", float(i), step=0)
    with opened(str(tmp_path)) as conn:
        info = find_run(conn, "big")
        series = {s.name: s for s in read_metrics(conn, info.id)}
        summaries = {s.name: s for s in metric_summaries(conn, info.id)}
    assert info.points == 101_200 and info.metrics == 1201
    np.testing.assert_array_equal(series["grad"].values, values)
    np.testing.assert_array_equal(series["grad"].steps, np.arange(len(values)))
    assert summaries["grad"].min == values.min() and summaries["grad"].max == values.max()
    assert summaries["grad"].last == values[-1] and summaries["grad"].count == len(values)
    assert [series[f"layer{i}:norm"].values.tolist() for i in (0, 1199)] == [[0.0], [1199.0]]


async def test_store_folder_and_file_are_private(tmp_path: Path) -> None:
    store = tmp_path / "nested" / "store"
    async with sagerun.Run("exp", "private", session=local(store)) as run:
        await run.log_metric("loss", 1.0)
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store / "sagerun.db").st_mode) == 0o600
    conn = sqlite3.connect(store / "sagerun.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


async def test_backend_contract(tmp_path: Path) -> None:
    backend = make_backend(local(tmp_path))
    assert isinstance(backend, LocalBackend) and backend.max_batch >= 5000
    record = RunRecord("exp", "direct", "Default-Run-Group-exp", "exp-direct", parameters={"a": 1})
    async with backend:
        opened = await backend.open_run(record)
        assert opened.parameters == {"a": 1}
        assert await backend.put_metrics("exp-direct", [("m", 1.5, 3, 1_700_000_000.25)]) == []
        with pytest.raises(sagerun.BackendError, match="open_run"):
            await backend.put_metrics("exp-other", [("m", 1.5, 3, 1_700_000_000.25)])
    assert stored_points(tmp_path, "direct") == [("m", 1.5, 3, 1_700_000_000.25)]


async def test_an_unwritable_store_is_a_backend_error_naming_the_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(sagerun.BackendError, match=f"local store in {blocker}"):
        async with sagerun.Run("exp", "nowhere", session=local(blocker)):
            pass


async def test_finding_runs_by_the_names_people_type(tmp_path: Path) -> None:
    for experiment in ("alpha", "beta"):
        async with sagerun.Run(experiment, "baseline", session=local(tmp_path)):
            pass
    async with sagerun.Run("alpha", "LR 0.5", session=local(tmp_path)):
        pass
    with opened(str(tmp_path)) as conn:
        assert find_run(conn, "Alpha/LR 0.5").ref == "alpha/lr-0-5"
        assert find_run(conn, "beta-baseline").ref == "beta/baseline"  # the trial component name
        with pytest.raises(AmbiguousRunError) as ambiguous:
            find_run(conn, "baseline")
        assert ambiguous.value.matches == ["alpha/baseline", "beta/baseline"]
        with pytest.raises(RunNotFoundError, match="`sagerun runs` lists them"):
            find_run(conn, "gamma/baseline")
        assert [r.ref for r in list_runs(conn, "alpha")] == ["alpha/baseline", "alpha/lr-0-5"]
        with pytest.raises(RunNotFoundError, match="experiments: alpha, beta"):
            list_runs(conn, "gamma")


def test_missing_and_newer_stores_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NoStoreError, match=f"no local store at {tmp_path}: run `sagerun demo`"):
        with opened(str(tmp_path)):
            pass
    assert not (tmp_path / "sagerun.db").exists()
    connect(str(tmp_path)).execute("PRAGMA user_version = 99").connection.close()
    with pytest.raises(StoreVersionError, match="upgrade sagerun"):
        connect(str(tmp_path))


def test_nothing_read_from_the_store_is_evaluated(tmp_path: Path) -> None:
    conn = connect(str(tmp_path))
    conn.execute("INSERT INTO experiments (name, created_time) VALUES ('exp', 0)")
    conn.execute("INSERT INTO runs (experiment_id, name, trial_name, trial_component_name, tags, created_time) "
                 "VALUES (1, 'evil', 't', 'exp-evil', '[]', 0)")
    conn.execute("INSERT INTO parameters VALUES (1, 'p', '__import__(\"os\").system(\"false\")', 'str')")
    conn.execute("INSERT INTO parameters VALUES (1, 'q', '1e3', 'float')")
    record: Any = load_run(conn, 1)
    conn.close()
    assert record.parameters == {"p": '__import__("os").system("false")', "q": 1000.0}
