"""The sync facade as a plain script, a notebook and a forking program use it: the same product as
the async API, with no event loop in sight and no thread hop on the hot path."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import inspect
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import aioboto3
import numpy as np
import pytest

import sagerun
import sagerun.sync as sync
from sagerun._sync import _portal

ROOT = Path(__file__).resolve().parents[1]
_BOTO = aioboto3.Session()


@pytest.fixture
def session(session: sagerun.Session) -> sagerun.Session:
    """The suite's session with one boto session shared by every run: each new one reloads botocore's models."""
    return dataclasses.replace(session, boto_session=_BOTO)


def received(fake) -> Counter:
    return Counter((p["trial_component"], p["name"], p["step"], p["value"]) for p in fake.points)


# -- a plain script ------------------------------------------------------------------------------


def test_a_script_logs_a_run_without_an_event_loop(session, sagemaker, metrics_fake):
    with sync.Run(experiment_name="mnist", run_name="lr-0.01", session=session) as run:
        run.log_parameters({"lr": 0.01, "optimizer": "adam"})
        run.log_parameter("batch_size", 64)
        for step in range(1_234):
            run.log_metric("train:loss", 1.0 / (step + 1), step=step)
        run.log_metrics({"val:loss": np.linspace(0, 1, 100)}, step=np.arange(100))
        run.flush()
        assert run.ingest_stats.delivered == 1_334
        assert sagemaker.describe_trial_component(TrialComponentName="mnist-lr-0-01")["Status"]["PrimaryStatus"] \
            == "InProgress"

    described = sagemaker.describe_trial_component(TrialComponentName="mnist-lr-0-01")
    assert described["Status"]["PrimaryStatus"] == "Completed"
    assert described["Parameters"] == {
        "lr": {"NumberValue": 0.01}, "optimizer": {"StringValue": "adam"}, "batch_size": {"NumberValue": 64}}
    expected = Counter(("mnist-lr-0-01", "train:loss", s, 1.0 / (s + 1)) for s in range(1_234))
    expected.update(("mnist-lr-0-01", "val:loss", s, float(v)) for s, v in enumerate(np.linspace(0, 1, 100)))
    assert received(metrics_fake) == expected
    assert metrics_fake.violations == []


def test_an_exception_in_the_block_marks_the_run_failed(session, sagemaker, metrics_fake):
    with pytest.raises(ZeroDivisionError):
        with sync.Run("exp", "broken", session=session) as run:
            run.log_metric("loss", 0.5, step=0)
            1 / 0
    status = sagemaker.describe_trial_component(TrialComponentName="exp-broken")["Status"]
    assert status["PrimaryStatus"] == "Failed"
    assert "ZeroDivisionError" in status["Message"]
    assert len(metrics_fake.points) == 1


def test_a_sync_run_is_entered_once_and_cannot_be_pickled(session):
    run = sync.Run("exp", "once", session=session)
    with run:
        with pytest.raises(RuntimeError, match="already been entered"):
            with run:
                pass
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(run)
    with pytest.raises(RuntimeError, match="closed"):
        run.log_metric("loss", 1.0)


# -- the hot path stays on the caller's thread ----------------------------------------------------


def test_log_metric_never_crosses_to_the_engine_thread(session, metrics_fake, monkeypatch):
    with sync.Run("exp", "hot", session=session) as run:
        def crossing(*args, **kwargs):
            raise AssertionError("log_metric went through the portal")

        monkeypatch.setattr(_portal, "call", crossing)
        monkeypatch.setattr(_portal, "portal", crossing)
        for step in range(500):
            run.log_metric("loss", float(step), step=step)
        run.log_metrics({"acc": np.ones(50)}, step=np.arange(50))
        monkeypatch.undo()
    assert len(metrics_fake.points) == 550


def test_queue_policies_apply_on_the_callers_thread(session):
    full = sagerun.Session(**{**session.__dict__, "queue_capacity": 3, "full_policy": "raise"})
    run = sync.Run("exp", "full", session=full)  # not entered: nothing drains its queue
    for step in range(3):
        run.log_metric("loss", 1.0, step=step)
    with pytest.raises(sagerun.QueueFullError, match="queue is full"):
        run.log_metric("loss", 1.0, step=3)
    assert run.ingest_stats.queued == 3


def test_a_full_queue_under_block_waits_for_room_and_loses_nothing(session, metrics_fake):
    metrics_fake.configure(latency_ms=5)
    small = sagerun.Session(**{**session.__dict__, "queue_capacity": 20, "full_policy": "block"})
    with sync.Run("exp", "blocking", session=small) as run:
        for step in range(400):
            run.log_metric("loss", float(step), step=step)
        run.log_metrics({"acc": np.zeros(30)}, step=np.arange(30))  # larger than the queue: waits for it to empty
    assert Counter(p["name"] for p in metrics_fake.points) == {"loss": 400, "acc": 30}


# -- notebooks and callbacks -------------------------------------------------------------------------


async def test_the_sync_api_works_where_an_event_loop_already_runs(session, sagemaker, metrics_fake):
    asyncio.get_running_loop()  # this thread runs a loop, as a Jupyter cell does
    with sync.Run("exp", "notebook", session=session) as run:
        run.log_metric("loss", 0.25, step=0)
        assert sync.load_run() is run
        run.flush()
        assert len(metrics_fake.points) == 1
    assert _portal._state.thread_id not in (None, threading.get_ident())
    assert sagemaker.describe_trial_component(TrialComponentName="exp-notebook")["Status"]["PrimaryStatus"] \
        == "Completed"


def test_a_blocking_call_from_the_engine_thread_raises_instead_of_deadlocking(session, metrics_fake):
    errors: list[str] = []
    metrics_fake.configure(item_error_rates={"VALIDATION_ERROR": 1.0})

    def dead_letter(trial_component, points, reason):  # called on the engine's loop thread
        try:
            run.flush()
        except sagerun.EngineThreadError as exc:
            errors.append(str(exc))

    with sync.Run("exp", "hook", session=session, dead_letter=dead_letter) as run:
        run.log_metric("loss", 1.0, step=0)
        run.flush()
    assert errors and "sagerun's own event-loop thread" in errors[0] and "flush" in errors[0]


# -- the sync twins are the async API ---------------------------------------------------------------


def _unasync():
    spec = importlib.util.spec_from_file_location("unasync", ROOT / "scripts" / "unasync.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("unasync", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("async_api", "sync_api"), [
    (sagerun.Run, sync.Run), (sagerun.Experiment, sync.Experiment),
    (sagerun.load_run, sync.load_run), (sagerun.list_runs, sync.list_runs),
])
def test_sync_twins_have_the_async_names_signatures_and_docstrings(async_api, sync_api):
    rewrite = _unasync()._rewrite_doc
    assert sync_api.__name__ == async_api.__name__
    assert inspect.getdoc(sync_api) == rewrite(inspect.getdoc(async_api))
    if not inspect.isclass(async_api):
        assert inspect.signature(sync_api) == inspect.signature(async_api)
        return
    names = [n for n in vars(async_api) if not n.startswith("_")] + ["__init__", "__repr__"]
    for name in names:
        async_member, sync_member = inspect.getattr_static(async_api, name), inspect.getattr_static(sync_api, name)
        assert type(sync_member) is type(async_member), name
        if isinstance(async_member, property):
            async_member, sync_member = async_member.fget, sync_member.fget
        elif isinstance(async_member, (classmethod, staticmethod)):
            async_member, sync_member = getattr(async_api, name), getattr(sync_api, name)
        assert inspect.signature(sync_member) == inspect.signature(async_member), name
        assert inspect.getdoc(sync_member) == (rewrite(inspect.getdoc(async_member) or "") or None), name
        assert not inspect.iscoroutinefunction(sync_member), name
    if hasattr(async_api, "__aexit__"):
        assert inspect.signature(sync_api.__exit__) == inspect.signature(async_api.__aexit__)


def test_sagerun_sync_offers_everything_sagerun_does():
    assert set(sagerun.__all__) <= set(sync.__all__)
    for name in sagerun.__all__:
        twin = getattr(sync, name)
        if name in ("Run", "Experiment", "load_run", "list_runs", "search_runs", "metric_histories",
                    "ExperimentAnalytics"):
            assert twin is not getattr(sagerun, name) and twin.__module__.startswith("sagerun._sync")
        else:
            assert twin is getattr(sagerun, name)


# -- processes --------------------------------------------------------------------------------------


def _wait(pid: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung")


def test_a_forked_child_cannot_log_to_its_parents_run_but_can_open_its_own(session, sagemaker, metrics_fake):
    metrics_fake.configure(latency_ms=20)  # points still queued and in flight when the process forks
    with sync.Run("exp", "forked", session=session) as run:
        for step in range(300):
            run.log_metric("loss", float(step), step=step)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report through the pipe, never return into pytest
            try:
                os.close(read)
                try:
                    run.log_metric("loss", -1.0, step=999)
                    report = "logged to the parent's run"
                except sagerun.ForkedRunError as exc:
                    report = str(exc)
                assert sync.load_run() is run  # the current run is still the parent's object
                run.__exit__(None, None, None)  # leaving the parent's block here sends nothing
                with sync.load_run(run_name="forked", experiment_name="exp", session=session) as own:
                    own.log_metric("child", 1.0, step=0)
                os.write(write, report.encode())
            except BaseException as exc:
                os.write(write, f"the child failed: {exc!r}".encode())
            finally:
                os._exit(0)
        os.close(write)
        assert _wait(pid) == 0
        with os.fdopen(read) as pipe:
            report = pipe.read()
        run.log_metric("loss", 300.0, step=300)  # the parent's run goes on

    assert "forked from it" in report and "load_run(run_name='forked', experiment_name='exp')" in report
    expected = Counter(("exp-forked", "loss", s, float(s)) for s in range(301))
    expected[("exp-forked", "child", 0, 1.0)] = 1
    assert received(metrics_fake) == expected  # every point once: the child resent none of the parent's
    assert sagemaker.describe_trial_component(TrialComponentName="exp-forked")["Status"]["PrimaryStatus"] \
        == "Completed"


def _rank(session: sagerun.Session, rank: int, steps: int) -> None:
    with sync.load_run(session=session) as run:  # finds the run from the job, as every rank does
        for step in range(steps):
            run.log_metric(f"rank{rank}:loss", step / 3, step=step)


def test_processes_of_one_job_all_load_its_run_and_log_to_it(session, sagemaker, metrics_fake, monkeypatch):
    with sync.Run("exp", "ddp", session=session):
        pass  # created before the job, as a launcher script does; the engine thread keeps running
    arn = sagemaker.create_training_job(
        TrainingJobName="ddp-job", AlgorithmSpecification={"TrainingImage": "image", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/sagemaker", OutputDataConfig={"S3OutputPath": "s3://bucket/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
        ExperimentConfig={"ExperimentName": "exp", "TrialName": "Default-Run-Group-exp", "RunName": "exp-ddp"},
    )["TrainingJobArn"]
    monkeypatch.setenv("TRAINING_JOB_ARN", arn)

    workers = [multiprocessing.get_context("fork").Process(target=_rank, args=(session, rank, 300)) for rank in (1, 2)]
    for worker in workers:
        worker.start()
    _rank(session, 0, 300)
    for worker in workers:
        worker.join(30)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert Counter((p["trial_component"], p["name"]) for p in metrics_fake.points) == {
        ("exp-ddp", "rank0:loss"): 300, ("exp-ddp", "rank1:loss"): 300, ("exp-ddp", "rank2:loss"): 300}


def test_runs_left_open_are_flushed_and_closed_at_interpreter_exit(moto_url, metrics_fake, sagemaker):
    script = f"""
import sagerun, sagerun.sync
session = sagerun.Session(region="us-east-1", endpoint_url={moto_url!r}, metrics_endpoint_url={metrics_fake.url!r})
run = sagerun.sync.Run("exp", "left-open", session=session).__enter__()
for step in range(50):
    run.log_metric("loss", float(step), step=step)
"""  # no exit, no flush: the interpreter exits with the run open and its points queued
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, env=os.environ)
    assert sorted(p["step"] for p in metrics_fake.points) == list(range(50))
    assert sagemaker.describe_trial_component(TrialComponentName="exp-left-open")["Status"]["PrimaryStatus"] \
        == "Completed"


def test_ingest_stats_can_be_read_from_any_thread_while_the_engine_sends(session, metrics_fake):
    import threading

    import sagerun.sync

    metrics_fake.configure(latency_ms=2)
    errors: list[BaseException] = []
    stop = threading.Event()
    with sagerun.sync.Run("exp", "stats-reader", session=session) as run:
        def read() -> None:
            try:
                while not stop.is_set():
                    run.ingest_stats
            except BaseException as exc:  # what the reader saw is the test's result
                errors.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        for step in range(5_000):
            run.log_metric("loss", 1.0, step=step)
        run.flush()
        stop.set()
        reader.join()
    assert errors == []
    assert run.ingest_stats.delivered == 5_000
