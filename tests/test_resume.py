"""A run opened again goes on where it was: the steps its backend has are not logged twice. The
spot story end to end: a job process stopped by SIGTERM, the same job restarted from its checkpoint."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from collections import Counter

import numpy as np
import pytest

import sagerun.sync
from test_load_run import experiment_config, seed_run


def test_a_reopened_run_skips_the_steps_it_has_and_counts_them(tmp_path):
    session = sagerun.Session(backend="local", store=str(tmp_path), linger=0.005)
    with sagerun.sync.Run("resume", "local", session=session) as run:
        run.log_metrics({"loss": np.arange(10.0)}, step=np.arange(10))
    with sagerun.sync.Run("resume", "local", session=session) as run:
        run.log_metrics({"loss": np.arange(5.0, 15.0)}, step=np.arange(5, 15))  # resumed from step 5
        run.log_metric("loss", 99.0, step=3)
        run.log_metric("accuracy", 0.5, step=3)  # a metric the run did not have: kept
        assert run.ingest_stats.skipped_resumed == 6
    steps, values = sagerun.sync.metric_histories("resume/local", "loss", session=session, as_frame=False)[
        ("resume/local", "loss")][:3:2]
    assert list(steps) == list(range(15)) and list(values) == list(np.arange(15.0))


def test_rewind_keeps_the_points_logged_again(tmp_path):
    session = sagerun.Session(backend="local", store=str(tmp_path), linger=0.005)
    with sagerun.sync.Run("resume", "rewind", session=session) as run:
        run.log_metrics({"loss": np.arange(10.0)}, step=np.arange(10))
    with sagerun.sync.Run("resume", "rewind", session=session, resume="rewind") as run:
        run.log_metrics({"loss": np.arange(5.0, 15.0)}, step=np.arange(5, 15))
        assert run.ingest_stats.skipped_resumed == 0
    history = sagerun.sync.metric_histories("resume/rewind", "loss", session=session, as_frame=False)
    assert len(history[("resume/rewind", "loss")].steps) == 20
    with pytest.raises(ValueError, match="resume must be 'skip' or 'rewind'"):
        sagerun.sync.Run("resume", "bad", resume="again")  # type: ignore[arg-type]


def test_an_mlflow_run_resumed_by_name_skips_its_steps(mlflow_server):
    import mlflow

    session = sagerun.Session(backend="mlflow", tracking_uri=mlflow_server.url, linger=0.005, sender="inline")
    for start in (0, 50):  # the second process restarts from the checkpoint at step 50
        with sagerun.sync.Run("resume-mlflow", "spot", session=session) as run:
            run.log_metrics({"loss": np.arange(start, start + 100.0)}, step=np.arange(start, start + 100))
            run_id = run.trial_component_name
    history = mlflow.MlflowClient(mlflow_server.url).get_metric_history(run_id, "loss")
    assert sorted(m.step for m in history) == list(range(150))


SPOT = textwrap.dedent("""
    import os, signal, sys, sagerun, sagerun.sync
    session = sagerun.Session(region="us-east-1", endpoint_url=sys.argv[1], metrics_endpoint_url=sys.argv[2],
                              store=sys.argv[3], retry_initial=0.01, retry_max_backoff=0.05, retry_deadline=0.5,
                              close_timeout=20.0, linger=0.005)
    with sagerun.sync.load_run(session=session) as run:
        for step in range(2000):
            run.log_metrics({f"m{i}": float(step) for i in range(10)}, step=step)
            if step == 1200:  # a spot interruption: SageMaker stops the job with SIGTERM
                os.kill(os.getpid(), signal.SIGTERM)
""")


def test_a_spot_job_restarted_from_its_checkpoint_holds_every_step_once(session, sagemaker, metrics_fake, moto_url,
                                                                        tmp_path, monkeypatch):
    seed_run(sagemaker, "spot", "job-run")
    checkpoints = tmp_path / "checkpoints"
    arn = sagemaker.create_training_job(
        TrainingJobName="spot-job", AlgorithmSpecification={"TrainingImage": "image", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/sagemaker", OutputDataConfig={"S3OutputPath": "s3://b/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60}, ExperimentConfig=experiment_config("spot", "job-run"),
        EnableManagedSpotTraining=True,
        CheckpointConfig={"S3Uri": "s3://ckpt/spot-job/", "LocalPath": str(checkpoints)})["TrainingJobArn"]
    monkeypatch.setenv("TRAINING_JOB_ARN", arn)
    monkeypatch.setenv("SAGERUN_PROCESSING_JOB_CONFIG", str(tmp_path / "none.json"))
    metrics_fake.configure(down=True)  # the endpoint takes nothing before the interruption
    first = subprocess.run([sys.executable, "-c", SPOT, moto_url, metrics_fake.url, str(tmp_path / "first")],
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 143, first.stderr  # ended by SIGTERM, as SageMaker sees it
    assert list((checkpoints / "sagerun" / "spool").glob("spot-job-run-*.jsonl"))

    metrics_fake.configure(down=False)
    restarted = dataclasses.replace(session, store=str(tmp_path / "second"))  # a new container: a new disk
    with sagerun.sync.load_run(session=restarted) as run:  # no `sagerun sync`: the run sends what was left
        for step in range(1000, 3000):  # from the checkpoint at step 1,000
            run.log_metrics({f"m{i}": float(step) for i in range(10)}, step=step)
        assert run.ingest_stats.skipped_resumed >= 201 * 10

    received = Counter((p["name"], p["step"]) for p in metrics_fake.points if p["trial_component"] == "spot-job-run")
    assert received == Counter((f"m{i}", step) for i in range(10) for step in range(3000))
    described = sagemaker.describe_trial_component(TrialComponentName="spot-job-run")
    assert described["Status"]["PrimaryStatus"] == "Completed"
