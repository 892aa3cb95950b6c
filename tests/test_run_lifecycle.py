"""A run's life as a user sees it in SageMaker: created, associated, parameters, status, times."""

from __future__ import annotations

import os
import pickle
from collections import Counter

import anyio
import pytest

import sagerun


async def test_run_is_created_with_parameters_and_completed(session, sagemaker, metrics_fake):
    async with sagerun.Run(experiment_name="mnist", run_name="lr-0.01", session=session) as run:
        run.log_parameters({"lr": 0.01, "optimizer": "adam", "epochs": 3})
        run.log_parameter("lr", 0.02)  # later values overwrite
        for step in range(25):
            await run.log_metric("train:loss", 1.0 / (step + 1), step=step)

    assert run.trial_component_name == "mnist-lr-0-01"
    described = sagemaker.describe_trial_component(TrialComponentName="mnist-lr-0-01")
    assert described["Status"]["PrimaryStatus"] == "Completed"
    assert described["Parameters"] == {
        "lr": {"NumberValue": 0.02}, "optimizer": {"StringValue": "adam"}, "epochs": {"NumberValue": 3},
    }
    assert described["DisplayName"] == "lr-0.01"
    assert described["StartTime"] <= described["EndTime"]
    assert sagemaker.describe_experiment(ExperimentName="mnist")["ExperimentName"] == "mnist"
    members = sagemaker.list_trial_components(TrialName="Default-Run-Group-mnist")["TrialComponentSummaries"]
    assert [m["TrialComponentName"] for m in members] == ["mnist-lr-0-01"]
    tags = sagemaker.list_tags(ResourceArn=described["TrialComponentArn"])["Tags"]
    assert {"Key": "sagemaker:trial-component-source", "Value": "run"} in tags
    received = Counter((p["trial_component"], p["name"], p["step"], p["value"]) for p in metrics_fake.points)
    assert received == Counter(("mnist-lr-0-01", "train:loss", s, 1.0 / (s + 1)) for s in range(25))
    assert metrics_fake.violations == []


async def test_exception_marks_the_run_failed_with_its_message(session, sagemaker, metrics_fake):
    with pytest.raises(ZeroDivisionError):
        async with sagerun.Run("exp", "broken", session=session) as run:
            await run.log_metric("loss", 0.5, step=0)
            1 / 0
    status = sagemaker.describe_trial_component(TrialComponentName="exp-broken")["Status"]
    assert status["PrimaryStatus"] == "Failed"
    assert "ZeroDivisionError" in status["Message"]
    assert len(metrics_fake.points) == 1  # points logged before the failure are delivered


async def test_cancelled_run_is_stopped_and_flushed(session, sagemaker, metrics_fake):
    logged = anyio.Event()

    async def training() -> None:
        async with sagerun.Run("exp", "cancelled", session=session) as run:
            for step in range(50):
                await run.log_metric("loss", float(step), step=step)
            logged.set()
            await anyio.sleep(30)

    async with anyio.create_task_group() as group:
        group.start_soon(training)
        await logged.wait()
        group.cancel_scope.cancel()
    assert sagemaker.describe_trial_component(TrialComponentName="exp-cancelled")["Status"]["PrimaryStatus"] == "Stopped"
    assert sorted(p["step"] for p in metrics_fake.points) == list(range(50))


async def test_reopening_a_run_loads_its_parameters(session, sagemaker):
    async with sagerun.Run("exp", "again", session=session) as run:
        run.log_parameters({"a": 1, "b": "x"})
    async with sagerun.Run("exp", "again", session=session) as run:
        assert run.parameters == {"a": 1, "b": "x"}
        run.log_parameter("b", "y")
    params = sagemaker.describe_trial_component(TrialComponentName="exp-again")["Parameters"]
    assert params == {"a": {"NumberValue": 1}, "b": {"StringValue": "y"}}
    members = sagemaker.list_trial_components(TrialName="Default-Run-Group-exp")["TrialComponentSummaries"]
    assert len(members) == 1


async def test_flush_saves_parameters_while_the_run_is_open(session, sagemaker, metrics_fake):
    async with sagerun.Run("exp", "flushing", session=session) as run:
        run.log_parameter("seed", 7)
        for step in range(13):
            await run.log_metric("acc", 0.5, step=step)
        await run.flush()
        assert len(metrics_fake.points) == 13
        described = sagemaker.describe_trial_component(TrialComponentName="exp-flushing")
        assert described["Parameters"] == {"seed": {"NumberValue": 7}}
        assert described["Status"]["PrimaryStatus"] == "InProgress"
        assert run.ingest_stats.delivered == 13


async def test_a_run_is_entered_once_and_is_not_picklable(session):
    run = sagerun.Run("exp", "once", session=session)
    async with run:
        with pytest.raises(sagerun.RunAlreadyEnteredError, match="already been entered"):
            async with run:
                pass
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(run)
    with pytest.raises(sagerun.RunClosedError, match="closed"):
        await run.log_metric("loss", 1.0)
    with pytest.raises(sagerun.RunClosedError, match=r"flush\(\) works inside the run's 'with' block"):
        await run.flush()
    # The named states are RuntimeErrors too, as the errors they replace were.
    assert issubclass(sagerun.RunClosedError, RuntimeError) and issubclass(sagerun.RunClosedError, sagerun.SagerunError)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"experiment_name": ""}, ValueError, "experiment_name"),
        ({"experiment_name": "e" * 60}, ValueError, "at most 59"),
        ({"experiment_name": "exp", "run_name": "r" * 60}, ValueError, "run_name"),
        ({"experiment_name": 3}, TypeError, "experiment_name must be a str"),
        ({"experiment_name": "exp", "run_name": "..."}, ValueError, "run_name must hold"),
    ],
)
def test_bad_names_are_refused_at_construction(kwargs, error, words):
    with pytest.raises(error, match=words):
        sagerun.Run(**kwargs)


def test_names_are_lower_cased_and_run_names_generated():
    run = sagerun.Run("My-Experiment")
    assert run.experiment_name == "my-experiment"
    assert run.run_name.startswith("sagemaker-run-")
    assert run.run_group_name == "Default-Run-Group-my-experiment"
    assert run.trial_component_name == f"my-experiment-{run.run_name}"


async def test_control_plane_down_is_a_clear_error_not_a_hang(metrics_fake):
    session = sagerun.Session(region="us-east-1", endpoint_url="http://127.0.0.1:9", retry_initial=0.01,
                              retry_max_backoff=0.05, retry_deadline=0.5, request_timeout=1.0)
    with anyio.fail_after(10):
        with pytest.raises(sagerun.BackendError, match="could not load or create run"):
            async with sagerun.Run("exp", "nowhere", session=session):
                pass


async def test_a_forked_child_of_an_async_run_cannot_log_to_it(tmp_path):
    # The run owns its fork handling: no sync facade, no engine thread involved.
    store = tmp_path / "store"
    async with sagerun.Run("exp", "forked-async", session=sagerun.Session(backend="local", store=str(store))) as run:
        await run.log_metric("loss", 0.0, step=0)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report through the pipe, never return into pytest
            try:
                step = run.log_metric("loss", -1.0, step=999)  # the check runs before the coroutine awaits
                try:
                    step.send(None)
                    report = "logged to the parent's run"
                except sagerun.ForkedRunError as exc:
                    report = str(exc)
                except StopIteration:
                    report = "logged to the parent's run"
                os.write(write, report.encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        with os.fdopen(read) as pipe:
            report = pipe.read()
        await run.log_metric("loss", 1.0, step=1)  # the parent's run goes on
    assert "forked from it" in report and "load_run(run_name='forked-async', experiment_name='exp')" in report
    assert run.ingest_stats.delivered == 2
