"""What ``load_run()`` opens in the SageMaker job shapes the SDK's fails in: a pipeline step (an
experiment and a trial but no run) and a training job of a tuning job (no experiment config at
all), read back as a user would: DescribeTrialComponent, ``list_runs`` and ``search_runs``."""

from __future__ import annotations

import dataclasses

import pytest

import sagerun.sync
from search_pages import SearchPages
from test_load_run import ROLE, training_job


@pytest.fixture(autouse=True)
def _in_a_job_only_as_told(monkeypatch, tmp_path):
    for name in ("TRAINING_JOB_ARN", "TRANSFORM_JOB_ARN", "SM_CURRENT_HOST", "SM_HOSTS", "RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SAGERUN_PROCESSING_JOB_CONFIG", str(tmp_path / "no-processing-job.json"))
    monkeypatch.setenv("SAGERUN_RESOURCE_CONFIG", str(tmp_path / "no-resource-config.json"))


def test_a_pipeline_step_gets_a_run_named_after_its_job_in_the_execution(session, sagemaker, monkeypatch):
    # What a pipeline makes before its step runs: the experiment (the pipeline) and a trial (the execution).
    sagemaker.create_experiment(ExperimentName="churn-pipeline")
    sagemaker.create_trial(TrialName="execution-7f3a", ExperimentName="churn-pipeline")
    arn = training_job(sagemaker, "pipelines-7f3a-Train-AbC", {"ExperimentName": "churn-pipeline",
                                                                "TrialName": "execution-7f3a"})
    monkeypatch.setenv("TRAINING_JOB_ARN", arn)
    with SearchPages(session.endpoint_url) as proxy:  # what was asked of SageMaker, moto answering
        with sagerun.sync.load_run(session=dataclasses.replace(session, sagemaker_endpoint_url=proxy.url)) as run:
            run.log_parameter("depth", 4)
    (link,) = [body for call, body in proxy.calls if call == "AddAssociation"]
    assert link["SourceArn"].endswith(":experiment-trial-component/pipelines-7f3a-train-abc-aws-training-job")
    assert link["DestinationArn"].endswith(":experiment-trial-component/churn-pipeline-pipelines-7f3a-train-abc")
    with sagerun.sync.load_run(session=session) as again:  # the same job again: the same run
        again.log_parameter("trees", 100)
    assert run.run_name == again.run_name == "pipelines-7f3a-train-abc"
    described = sagemaker.describe_trial_component(TrialComponentName="churn-pipeline-pipelines-7f3a-train-abc")
    assert described["Parameters"] == {"depth": {"NumberValue": 4.0}, "trees": {"NumberValue": 100.0}}
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=described["TrialComponentArn"])["Tags"]}
    assert tags["sagerun:job"] == arn and tags["sagerun:job-trial-component"] == "pipelines-7f3a-Train-AbC-aws-training-job"
    trials = sagemaker.list_trials(TrialComponentName="churn-pipeline-pipelines-7f3a-train-abc")["TrialSummaries"]
    assert [t["TrialName"] for t in trials] == ["execution-7f3a"]
    assert [r.run_name for r in sagerun.sync.list_runs("churn-pipeline", session=session)] == ["pipelines-7f3a-train-abc"]
    (row,) = sagerun.sync.search_runs("churn-pipeline", session=session, as_frame=False)
    assert row["run_group"] == "execution-7f3a" and row["param.trees"] == 100


def test_a_tuning_jobs_trials_are_runs_of_an_experiment_named_after_it(session, sagemaker, moto_url, monkeypatch):
    sagemaker.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="xgb-tune", HyperParameterTuningJobConfig={
            "Strategy": "Bayesian", "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2},
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"}},
        TrainingJobDefinition={"AlgorithmSpecification": {"TrainingImage": "image", "TrainingInputMode": "File"},
                               "RoleArn": ROLE, "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
                               "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                                  "VolumeSizeInGB": 1},
                               "StoppingCondition": {"MaxRuntimeInSeconds": 60}})
    tuning_arn = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="xgb-tune")[
        "HyperParameterTuningJobArn"]
    for trial, eta in (("xgb-tune-001-abc", "0.1"), ("xgb-tune-002-def", "0.3")):
        sagemaker.create_training_job(
            TrainingJobName=trial, AlgorithmSpecification={"TrainingImage": "image", "TrainingInputMode": "File"},
            RoleArn=ROLE, OutputDataConfig={"S3OutputPath": "s3://bucket/out"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 60},
            HyperParameters={"eta": eta, "objective": '"binary:logistic"', "sagemaker_program": '"train.py"',
                             "_tuning_objective_metric": "validation:auc"})

    def of_the_tuning_job(answer: dict) -> dict:  # what SageMaker says of a tuner's job, and moto cannot
        return {**answer, "TuningJobArn": tuning_arn}

    with SearchPages(moto_url, patches={"DescribeTrainingJob": of_the_tuning_job}) as proxy:
        tuned = sagerun.Session(**{**session.__dict__, "sagemaker_endpoint_url": proxy.url})
        for trial, auc in (("xgb-tune-001-abc", 0.81), ("xgb-tune-002-def", 0.86)):
            monkeypatch.setenv("TRAINING_JOB_ARN", sagemaker.describe_training_job(TrainingJobName=trial)[
                "TrainingJobArn"])
            with sagerun.sync.load_run(session=tuned) as run:
                run.log_metric("validation:auc", auc, step=0)
    assert [r.run_name for r in sagerun.sync.list_runs("xgb-tune", session=session, sort_by="Name",
                                                       sort_order="Ascending")] == ["xgb-tune-001-abc",
                                                                                    "xgb-tune-002-def"]
    described = sagemaker.describe_trial_component(TrialComponentName="xgb-tune-xgb-tune-002-def")
    assert described["Parameters"] == {"eta": {"NumberValue": 0.3}, "objective": {"StringValue": "binary:logistic"}}
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=described["TrialComponentArn"])["Tags"]}
    assert tags["sagerun:tuning-objective"] == "validation:auc" and tags["sagerun:tuning-objective-type"] == "Maximize"
