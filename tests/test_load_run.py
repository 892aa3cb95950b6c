"""Finding runs again, as a job script or a notebook does: load_run, list_runs, Experiment.

Every scenario runs twice, through the async API and through the sync facade (called from this
running loop's thread, as in a notebook), with the same code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import inspect
import json
import logging
import time
from collections import Counter
from typing import Any, AsyncIterator

import aioboto3
import pytest

import sagerun
import sagerun.sync
from sagerun._model import environment as _environment

ROLE = "arn:aws:iam::123456789012:role/sagemaker"
_BOTO = aioboto3.Session()


@pytest.fixture
def session(session: sagerun.Session) -> sagerun.Session:
    """The suite's session with one boto session shared by every run: each new one reloads botocore's models."""
    return dataclasses.replace(session, boto_session=_BOTO)


class Api:
    """``sagerun`` or ``sagerun.sync``, driven by one test body."""

    def __init__(self, flavor: str) -> None:
        self.flavor = flavor
        self.sagerun: Any = sagerun if flavor == "async" else sagerun.sync

    async def __call__(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    @contextlib.asynccontextmanager
    async def opened(self, run: Any) -> AsyncIterator[Any]:
        if self.flavor == "async":
            async with run as entered:
                yield entered
        else:
            with run as entered:
                yield entered

    async def log_run(self, session: sagerun.Session, experiment: str, run_name: str, **parameters: Any) -> Any:
        async with self.opened(self.sagerun.Run(experiment, run_name, session=session)) as run:
            run.log_parameters(parameters)
        return run


@pytest.fixture(params=["async", "sync"])
def api(request: pytest.FixtureRequest) -> Api:
    return Api(request.param)


@pytest.fixture(autouse=True)
def _no_job(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Outside any SageMaker job, whatever the machine running the tests has."""
    for name in (_environment.TRAINING_JOB_ARN, _environment.TRANSFORM_JOB_ARN):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SAGERUN_PROCESSING_JOB_CONFIG", str(tmp_path / "no-processing-job.json"))


def seed_run(sagemaker: Any, experiment: str, run: str, **parameters: Any) -> None:
    """A run as a Run leaves it, made with plain boto3 calls (quicker than a Run's whole life)."""
    trial = f"Default-Run-Group-{experiment}"
    if experiment not in [e["ExperimentName"] for e in sagemaker.list_experiments()["ExperimentSummaries"]]:
        sagemaker.create_experiment(ExperimentName=experiment)
    if trial not in [t["TrialName"] for t in sagemaker.list_trials()["TrialSummaries"]]:
        sagemaker.create_trial(TrialName=trial, ExperimentName=experiment)
    arn = sagemaker.create_trial_component(TrialComponentName=f"{experiment}-{run}")["TrialComponentArn"]
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "sagemaker:trial-component-source", "Value": "run"}])
    sagemaker.associate_trial_component(TrialComponentName=f"{experiment}-{run}", TrialName=trial)
    sagemaker.update_trial_component(TrialComponentName=f"{experiment}-{run}", Status={"PrimaryStatus": "Completed"},
                                     Parameters={k: {"NumberValue": v} for k, v in parameters.items()})


def experiment_config(experiment: str, run: str) -> dict[str, str]:
    """What ``run.experiment_config`` gives, as a user of boto3 writes it."""
    return {"ExperimentName": experiment, "TrialName": f"Default-Run-Group-{experiment}", "RunName": f"{experiment}-{run}"}


def training_job(sagemaker: Any, name: str, config: dict[str, str]) -> str:
    return sagemaker.create_training_job(
        TrainingJobName=name, AlgorithmSpecification={"TrainingImage": "image", "TrainingInputMode": "File"},
        RoleArn=ROLE, OutputDataConfig={"S3OutputPath": "s3://bucket/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60}, ExperimentConfig=config,
    )["TrainingJobArn"]


def processing_job(sagemaker: Any, name: str, config: dict[str, str]) -> str:
    return sagemaker.create_processing_job(
        ProcessingJobName=name, AppSpecification={"ImageUri": "image"}, RoleArn=ROLE,
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                               "VolumeSizeInGB": 1}},
        StoppingCondition={"MaxRuntimeInSeconds": 60}, ExperimentConfig=config,
    )["ProcessingJobArn"]


def transform_job(sagemaker: Any, name: str, config: dict[str, str]) -> str:
    sagemaker.create_model(ModelName=f"{name}-model", PrimaryContainer={"Image": "image"}, ExecutionRoleArn=ROLE)
    return sagemaker.create_transform_job(
        TransformJobName=name, ModelName=f"{name}-model",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/in"}}},
        TransformOutput={"S3OutputPath": "s3://bucket/out"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1}, ExperimentConfig=config,
    )["TransformJobArn"]


# -- load_run ---------------------------------------------------------------------------------------


async def test_load_run_by_names_opens_the_existing_run_with_its_parameters(api, session, sagemaker, metrics_fake):
    await api.log_run(session, "mnist", "lr-0.01", lr=0.01)
    run = await api(api.sagerun.load_run, run_name="lr-0.01", experiment_name="mnist", session=session)
    async with api.opened(run):
        assert run.parameters == {"lr": 0.01}
        run.log_parameter("epochs", 3)
        await api(run.log_metric, "val:acc", 0.9, step=1)
    described = sagemaker.describe_trial_component(TrialComponentName="mnist-lr-0-01")
    assert described["Parameters"] == {"lr": {"NumberValue": 0.01}, "epochs": {"NumberValue": 3}}
    assert [(p["trial_component"], p["name"]) for p in metrics_fake.points] == [("mnist-lr-0-01", "val:acc")]


@pytest.mark.parametrize("names", [{"run_name": "r"}, {"experiment_name": "e"}])
async def test_load_run_needs_both_names_or_neither(api, names):
    with pytest.raises(ValueError, match="both run_name and experiment_name"):
        await api(api.sagerun.load_run, **names)


async def test_load_run_outside_a_run_and_a_job_says_what_to_do(api):
    with pytest.raises(RuntimeError, match="found no run to load.*with Run.*ExperimentConfig.*run_name"):
        await api(api.sagerun.load_run)


async def test_load_run_inside_a_run_block_returns_that_run(api, session, metrics_fake):
    async with api.opened(api.sagerun.Run("exp", "current", session=session)) as run:
        loaded = await api(api.sagerun.load_run)  # as deep in the training code, with no names
        assert loaded is run
        await api(loaded.log_metric, "loss", 0.5, step=0)
    assert [(p["trial_component"], p["step"]) for p in metrics_fake.points] == [("exp-current", 0)]


async def test_with_load_run_nested_in_a_run_block_neither_reopens_nor_closes_it(api, session, sagemaker):
    async with api.opened(api.sagerun.Run("exp", "nested", session=session)) as run:
        async with api.opened(await api(api.sagerun.load_run)) as loaded:
            assert loaded is run
            await api(loaded.log_metric, "loss", 0.5, step=0)
        status = sagemaker.describe_trial_component(TrialComponentName="exp-nested")["Status"]
        assert status["PrimaryStatus"] == "InProgress"
        await api(run.log_metric, "loss", 0.25, step=1)  # still open after the inner block
    assert sagemaker.describe_trial_component(TrialComponentName="exp-nested")["Status"]["PrimaryStatus"] == "Completed"


async def test_load_run_in_a_training_job_finds_the_run_of_its_experiment_config(
        api, session, sagemaker, metrics_fake, monkeypatch):
    seed_run(sagemaker, "mnist", "job-run", lr=0.1)
    arn = training_job(sagemaker, "train-1", experiment_config("mnist", "job-run"))
    monkeypatch.setenv("TRAINING_JOB_ARN", arn)  # what SageMaker sets in a training container

    run = await api(api.sagerun.load_run, session=session)
    assert (run.experiment_name, run.run_name) == ("mnist", "job-run")
    async with api.opened(run):
        assert run.parameters == {"lr": 0.1}
        for epoch in range(3):
            await api(run.log_metric, "val:acc", epoch / 10, step=epoch)
    assert Counter((p["trial_component"], p["step"]) for p in metrics_fake.points) == Counter(
        ("mnist-job-run", epoch) for epoch in range(3))


async def test_load_run_in_a_processing_job_reads_its_config_file(api, session, sagemaker, monkeypatch, tmp_path):
    arn = processing_job(sagemaker, "process-1", experiment_config("exp", "prep"))
    config = tmp_path / "processingjobconfig.json"
    config.write_text(json.dumps({"ProcessingJobArn": arn, "ProcessingJobName": "process-1"}))
    monkeypatch.setenv("SAGERUN_PROCESSING_JOB_CONFIG", str(config))
    monkeypatch.setenv("TRANSFORM_JOB_ARN", "arn:aws:sagemaker:us-east-1:123456789012:transform-job/other")

    run = await api(api.sagerun.load_run, session=session)  # the processing job comes before transform
    assert (run.experiment_name, run.run_name, run.trial_component_name) == ("exp", "prep", "exp-prep")


async def test_load_run_in_a_transform_job_uses_its_arn(api, session, sagemaker, monkeypatch):
    monkeypatch.setenv("TRANSFORM_JOB_ARN", transform_job(sagemaker, "transform-1", experiment_config("exp", "infer")))
    run = await api(api.sagerun.load_run, session=session)
    assert run.trial_component_name == "exp-infer"


async def test_a_job_without_a_run_in_its_experiment_config_is_a_clear_error(api, session, sagemaker, monkeypatch):
    monkeypatch.setenv("TRAINING_JOB_ARN", training_job(sagemaker, "no-run", {"ExperimentName": "exp"}))
    with pytest.raises(RuntimeError, match="ExperimentConfig names no run"):
        await api(api.sagerun.load_run, session=session)


async def test_a_job_that_cannot_be_described_is_a_backend_error(api, session, monkeypatch):
    monkeypatch.setenv("TRAINING_JOB_ARN", "arn:aws:sagemaker:us-east-1:123456789012:training-job/missing")
    with pytest.raises(sagerun.BackendError, match="training job 'missing' was not found"):
        await api(api.sagerun.load_run, session=session)


async def test_explicit_names_win_over_the_job_with_a_warning(api, session, sagemaker, monkeypatch, caplog):
    monkeypatch.setenv("TRAINING_JOB_ARN", training_job(sagemaker, "train-2", experiment_config("exp", "from-job")))
    with caplog.at_level(logging.WARNING, logger="sagerun"):
        run = await api(api.sagerun.load_run, run_name="mine", experiment_name="exp", session=session)
    assert run.trial_component_name == "exp-mine"
    assert "explicit names win over the SageMaker job's ExperimentConfig" in caplog.text


async def test_a_job_started_with_run_experiment_config_finds_the_run(api, session, sagemaker, monkeypatch):
    async with api.opened(api.sagerun.Run("Mnist", "lr-0.01", session=session)) as run:
        config = run.experiment_config
    assert config == experiment_config("mnist", "lr-0-01")
    monkeypatch.setenv("TRAINING_JOB_ARN", training_job(sagemaker, "train-3", config))
    loaded = await api(api.sagerun.load_run, session=session)
    assert loaded.trial_component_name == run.trial_component_name


# -- list_runs and Experiment -----------------------------------------------------------------------


async def test_list_runs_gives_the_runs_of_one_experiment_newest_first(api, session, sagemaker):
    for name in ("first", "second", "third"):
        seed_run(sagemaker, "exp", name, seed=len(name))
        time.sleep(0.01)  # distinct creation times
    seed_run(sagemaker, "other", "elsewhere")
    sagemaker.create_trial_component(TrialComponentName="exp-by-hand")  # no Run tag: not a run
    sagemaker.associate_trial_component(TrialComponentName="exp-by-hand", TrialName="Default-Run-Group-exp")

    runs = await api(api.sagerun.list_runs, "exp", session=session)
    assert [run.run_name for run in runs] == ["third", "second", "first"]
    assert isinstance(runs[0], api.sagerun.Run)
    assert runs[0].parameters == {"seed": 5}
    assert runs[0].run_group_name == "Default-Run-Group-exp"

    oldest = await api(api.sagerun.list_runs, "exp", sort_order="Ascending", max_results=2, session=session)
    assert [run.run_name for run in oldest] == ["first", "second"]
    by_name = await api(api.sagerun.list_runs, "exp", sort_by="Name", sort_order="Ascending", session=session)
    assert [run.run_name for run in by_name] == ["first", "second", "third"]


async def test_list_runs_filters_by_creation_time(api, session, sagemaker):
    seed_run(sagemaker, "exp", "before")
    time.sleep(0.02)
    middle = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(0.02)
    seed_run(sagemaker, "exp", "after")
    after = await api(api.sagerun.list_runs, "exp", created_after=middle, session=session)
    before = await api(api.sagerun.list_runs, "exp", created_before=middle, session=session)
    assert [run.run_name for run in after] == ["after"]
    assert [run.run_name for run in before] == ["before"]


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"sort_by": "Size"}, "sort_by must be one of"), ({"sort_order": "up"}, "sort_order must be one of"),
    ({"max_results": 0}, "max_results must be a positive int"),
])
async def test_list_runs_refuses_bad_arguments(api, session, kwargs, words):
    with pytest.raises(ValueError, match=words):
        await api(api.sagerun.list_runs, "exp", session=session, **kwargs)


async def test_a_listed_run_can_be_opened_to_log_more(api, session, sagemaker, metrics_fake):
    seed_run(sagemaker, "exp", "again", lr=0.5)
    [run] = await api(api.sagerun.list_runs, "exp", session=session)
    async with api.opened(run):
        await api(run.log_metric, "loss", 1.0, step=7)
    assert [(p["trial_component"], p["step"]) for p in metrics_fake.points] == [("exp-again", 7)]
    assert sagemaker.describe_trial_component(TrialComponentName="exp-again")["Parameters"] == {
        "lr": {"NumberValue": 0.5}}


async def test_experiment_create_load_list_and_delete_all(api, session, sagemaker):
    created = await api(api.sagerun.Experiment.create, "Vision", display_name="Vision models",
                        description="image classifiers", session=session)
    assert (created.experiment_name, created.display_name, created.description) == (
        "vision", "Vision models", "image classifiers")
    assert created.experiment_arn.endswith(":experiment/vision")
    experiment = await api(api.sagerun.Experiment.load, "vision", session=session)
    # moto keeps neither DisplayName nor Description of experiments: only the name and times are checked.
    assert (experiment.experiment_arn, experiment.creation_time) == (created.experiment_arn, created.creation_time)
    seed_run(sagemaker, "vision", "resnet")
    seed_run(sagemaker, "vision", "vit")
    seed_run(sagemaker, "keep", "me")
    assert sorted(run.run_name for run in await api(experiment.list_runs)) == ["resnet", "vit"]

    with pytest.raises(ValueError, match="confirm with delete_all\\('--force'\\)"):
        await api(experiment.delete_all, "yes")
    await api(experiment.delete_all, "--force")
    experiments = [e["ExperimentName"] for e in sagemaker.list_experiments()["ExperimentSummaries"]]
    components = [c["TrialComponentName"] for c in sagemaker.list_trial_components()["TrialComponentSummaries"]]
    trials = [t["TrialName"] for t in sagemaker.list_trials()["TrialSummaries"]]
    assert (experiments, components, trials) == (["keep"], ["keep-me"], ["Default-Run-Group-keep"])


async def test_loading_a_missing_experiment_is_a_backend_error(api, session):
    # moto answers DescribeExperiment of a missing experiment with HTTP 500 (SageMaker: ResourceNotFound),
    # which is retried as transient until the deadline: keep it short here.
    quick = sagerun.Session(**{**session.__dict__, "retry_deadline": 0.2})
    with pytest.raises(sagerun.BackendError, match="experiment 'nothing'"):
        await api(api.sagerun.Experiment.load, "nothing", session=quick)
