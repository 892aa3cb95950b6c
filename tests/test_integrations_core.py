"""The core under every framework integration, driven as an adapter drives it: which run, which
ranks, what is logged, and a callback error that never stops the training."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import sagerun
import sagerun.sync
from sagerun.integrations._core import Tracker
from tracked import local_session, read, runs


class OneElement:
    """A one-element tensor as torch has it: ``size`` is a method, ``numel()`` counts."""

    def __init__(self, value: float) -> None:
        self.value = value

    def size(self) -> tuple[int, ...]:
        return (1,)

    def numel(self) -> int:
        return 1

    def item(self) -> float:
        return self.value


def test_numbers_are_logged_and_the_rest_skipped_and_counted(tmp_path):
    tracker = Tracker("demo", experiment_name="core", run_name="values", session=local_session(tmp_path))
    tracker.metrics({"a": 1, "b": np.float32(0.5), "c": np.array([2.0]), "d": OneElement(3.0), "e": "text",
                     "f": {"x": 1}, "g": [1, 2], "h": True, "": 1.0}, step=4)
    tracker.end()
    logged = read(tmp_path, "core/values")
    assert logged.series == {"a": ([4], [1.0]), "b": ([4], [0.5]), "c": ([4], [2.0]), "d": ([4], [3.0])}
    assert (tracker.stats.points, tracker.stats.skipped) == (4, 5)
    assert logged.status == "Completed" and logged.shown["tags"] == {"sagerun:integration": "demo"}


def test_parameters_are_flattened_reduced_cut_and_never_hold_a_credential(tmp_path):
    tracker = Tracker("demo", experiment_name="core", run_name="params", session=local_session(tmp_path))
    tracker.parameters({"lr": 0.1, "layers": [4, 2], "nested": {"depth": 3, "on": True, "none": None},
                        "long": "x" * 3000, "nan": float("nan"), "hub_token": "hf_secret", "api_key": "k",
                        "huge": 2**1100})
    tracker.parameters({"max_new_tokens": 64, "bos_token": "<s>", "token": "t"})
    tracker.end()
    parameters = read(tmp_path, "core/params").parameters
    assert parameters == {"lr": 0.1, "layers": "[4, 2]", "nested/depth": 3, "nested/on": "True",
                          "nested/none": "None", "long": "x" * 2500, "nan": "nan", "huge": str(2**1100),
                          "max_new_tokens": 64, "bos_token": "<s>"}
    assert tracker.stats.cut == 4  # the long string, and the three credentials


def test_only_rank_zero_logs_unless_per_rank_which_prefixes_the_rank(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    quiet = Tracker("demo", experiment_name="core", run_name="ranks", session=local_session(tmp_path))
    quiet.metrics({"loss": 1.0}, step=0)
    quiet.parameters({"lr": 0.1})
    assert quiet.run() is None and not (tmp_path / "sagerun.db").exists()
    loud = Tracker("demo", experiment_name="core", run_name="ranks", session=local_session(tmp_path), per_rank=True)
    loud.metrics({"loss": 1.0}, step=0)
    loud.parameters({"lr": 0.1})  # parameters come from rank 0 alone
    loud.end()
    logged = read(tmp_path, "core/ranks")
    assert logged.series == {"rank1/loss": ([0], [1.0])} and logged.parameters == {}


def test_per_rank_without_a_name_fixes_one_for_the_processes_it_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGERUN_RUN_NAME", "")  # unset, and restored after the test
    for variable in ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "OMPI_MCA_orte_hnp_uri", "MASTER_ADDR"):
        monkeypatch.delenv(variable, raising=False)
    tracker = Tracker("demo", experiment_name="core", session=local_session(tmp_path), per_rank=True)
    assert tracker.names == ("core", os.environ["SAGERUN_RUN_NAME"]) and os.environ["SAGERUN_RUN_NAME"]
    # A later core of this process (the next trial of a sweep) is not bound to that name.
    assert Tracker("demo", experiment_name="core").names == ("core", None)


def test_ranks_started_apart_share_the_run_of_their_launch(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "d3adb33f")  # what torchrun gives every rank of one launch
    names = set()
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        names.add(Tracker("demo", experiment_name="core", per_rank=True).names)
    (only,) = names
    assert only[1].startswith("demo-")


def test_a_rank_that_is_not_zero_never_overwrites_the_runs_record(tmp_path, monkeypatch):
    lead = Tracker("demo", experiment_name="core", run_name="shared", session=local_session(tmp_path), per_rank=True)
    lead.parameters({"lr": 0.1})
    lead.metrics({"loss": 1.0}, step=0)
    lead.end()
    monkeypatch.setenv("RANK", "1")
    other = Tracker("demo", experiment_name="core", run_name="shared", session=local_session(tmp_path), per_rank=True)
    other.metrics({"loss": 2.0}, step=0)
    other.end(RuntimeError("rank 1 failed"))  # its own end: the run's status is rank 0's
    logged = read(tmp_path, "core/shared")
    assert logged.parameters == {"lr": 0.1} and logged.status == "Completed"
    assert logged.series == {"rank0/loss": ([0], [1.0]), "rank1/loss": ([0], [2.0])}


def test_names_come_from_the_environment_and_a_reopened_run_is_the_same_run(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGERUN_EXPERIMENT_NAME", "from-env")
    monkeypatch.setenv("SAGERUN_RUN_NAME", "named")
    tracker = Tracker("demo", session=local_session(tmp_path))
    tracker.metrics({"loss": 1.0}, step=0)
    tracker.end()
    tracker.metrics({"test/loss": 0.5}, step=1)  # evaluate() after train(): the same run, reopened
    tracker.end()
    assert [r["run"] for r in runs(tmp_path)] == ["named"]
    assert read(tmp_path, "from-env/named").series == {"loss": ([0], [1.0]), "test/loss": ([1], [0.5])}


def test_without_names_a_run_of_the_frameworks_experiment_is_opened(tmp_path):
    tracker = Tracker("demo", session=local_session(tmp_path))
    tracker.metrics({"loss": 1.0}, step=0)
    tracker.end()
    (listed,) = runs(tmp_path)
    assert listed["experiment"] == "demo" and listed["status"] == "Completed"


def test_a_given_run_is_logged_to_and_never_closed(tmp_path):
    with sagerun.sync.Run("core", "given", session=local_session(tmp_path)) as run:
        tracker = Tracker("demo", run=run)
        tracker.metrics({"loss": 1.0}, step=0)
        tracker.end()
        assert tracker.active_run is run
        run.log_metric("after", 2.0, step=1)  # still open
    assert read(tmp_path, "core/given").series == {"loss": ([0], [1.0]), "after": ([1], [2.0])}


def test_an_enclosing_run_is_found_and_left_open(tmp_path):
    with sagerun.sync.Run("core", "enclosing", session=local_session(tmp_path)) as run:
        tracker = Tracker("demo", session=run.session)
        tracker.metrics({"loss": 1.0}, step=0)
        tracker.end()
        run.log_metric("after", 2.0, step=1)
    logged = read(tmp_path, "core/enclosing")
    assert logged.series == {"loss": ([0], [1.0]), "after": ([1], [2.0])} and logged.status == "Completed"


def test_a_failed_training_ends_the_run_failed_with_its_error(tmp_path):
    tracker = Tracker("demo", experiment_name="core", run_name="failed", session=local_session(tmp_path))
    tracker.metrics({"loss": 1.0}, step=0)
    tracker.end(ValueError("loss went NaN"))
    logged = read(tmp_path, "core/failed")
    assert logged.status == "Failed" and logged.shown["status_message"] == "ValueError: loss went NaN"


def test_errors_inside_a_callback_are_counted_logged_once_and_never_raised(tmp_path, caplog):
    tracker = Tracker("demo", experiment_name="core", run_name="errors", session=local_session(tmp_path))

    def broken() -> None:
        raise KeyError("boom")

    with caplog.at_level(logging.WARNING, logger="sagerun"):
        assert [tracker.safely(broken) for _ in range(3)] == [None, None, None]
    assert tracker.stats.errors == 3
    assert [r.getMessage() for r in caplog.records].count(
        "sagerun: the demo integration failed in broken, and the training goes on (said once for this kind of "
        "error): KeyError: 'boom'") == 1


@pytest.mark.parametrize("kwargs, words", [
    ({"log_checkpoints": "best"}, "log_checkpoints must be 'last', 'all' or None"),
    ({"register_model": "no spaces"}, "register_model must be 1 to 63 letters"),
    ({"run": "a-run"}, "run must be a sagerun.sync.Run or a sagerun.Run"),
    ({"run_name": "x" * 60}, "run_name"),
    ({"tags": {"aws:x": "1"}}, "aws:"),
])
def test_bad_options_are_clear_errors_at_the_call(kwargs, words):
    with pytest.raises((TypeError, ValueError), match=words):
        Tracker("demo", **kwargs)


async def test_an_async_run_takes_metrics_but_files_need_a_sync_run(tmp_path):
    async with sagerun.Run("core", "async", session=local_session(tmp_path)) as run:
        with pytest.raises(ValueError, match="give a sagerun.sync.Run"):
            Tracker("demo", run=run, log_checkpoints="last")
        tracker = Tracker("demo", run=run)
        tracker.metrics({"loss": 1.0}, step=0)
    assert read(tmp_path, "core/async").series == {"loss": ([0], [1.0])}


def test_a_pickled_core_reopens_its_run_by_name(tmp_path):
    import pickle

    tracker = Tracker("demo", experiment_name="core", run_name="pickled", session=local_session(tmp_path))
    tracker.metrics({"loss": 1.0}, step=0)
    copy = pickle.loads(pickle.dumps(tracker))
    tracker.end()
    copy.metrics({"loss": 0.5}, step=1)
    copy.end()
    assert read(tmp_path, "core/pickled").series == {"loss": ([0, 1], [1.0, 0.5])}


def test_a_run_left_open_by_a_training_that_raised_ends_failed_at_exit(tmp_path):
    script = textwrap.dedent(f"""
        import sagerun
        from sagerun.integrations._core import Tracker
        tracker = Tracker("demo", experiment_name="core", run_name="crashed",
                          session=sagerun.Session(backend="local", store={str(tmp_path)!r}))
        tracker.metrics({{"loss": 1.0}}, step=0)
        raise RuntimeError("CUDA out of memory")  # the framework's loop raised: no end event came
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "CUDA out of memory" in done.stderr
    logged = read(tmp_path, "core/crashed")
    assert logged.status == "Failed" and logged.shown["status_message"] == "RuntimeError: CUDA out of memory"
    assert logged.series == {"loss": ([0], [1.0])}


def test_importing_sagerun_and_its_integrations_package_imports_no_framework():
    frameworks = ("torch", "transformers", "lightning", "pytorch_lightning", "keras", "jax", "xgboost", "lightgbm")
    script = ("import sys, sagerun, sagerun.sync, sagerun.integrations, sagerun.integrations._core; "
              f"print([name for name in {frameworks!r} if name in sys.modules])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
