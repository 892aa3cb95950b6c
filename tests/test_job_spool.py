"""Inside a SageMaker job, what is undelivered at close is kept beyond the job's end, and
``sagerun sync --from`` delivers it from another machine (issue 13, part 3)."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from collections import Counter
from typing import Any

import boto3
import orjson
import pytest

import sagerun.sync as sync
from sagerun.store import Spool

from test_load_run import experiment_config, training_job


@pytest.fixture
def s3(moto_url: str) -> Any:
    return boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def received(fake) -> Counter:
    return Counter((p["trial_component"], p["name"], p["step"], p["value"]) for p in fake.points)


def log_and_close(session, count: int) -> None:
    with sync.Run("exp", "in-job", session=session, artifact_bucket="kept") as run:
        for step in range(count):
            run.log_metric("loss", float(step), step=step)


def test_a_training_job_keeps_the_undelivered_points_in_s3_and_sync_from_delivers_them(
        session, sagemaker, s3, metrics_fake, moto_url, tmp_path, monkeypatch, caplog):
    s3.create_bucket(Bucket="kept")
    monkeypatch.setenv("TRAINING_JOB_ARN", training_job(sagemaker, "train-spool", experiment_config("exp", "in-job")))
    metrics_fake.configure(down=True)  # nothing reaches the endpoint while the job runs
    container = dataclasses.replace(session, store=str(tmp_path / "container"), retry_deadline=0.5)
    with caplog.at_level(logging.WARNING, logger="sagerun"):
        log_and_close(container, 120)

    uri = "s3://kept/trial-component-artifacts/exp-in-job/spool/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="kept", Prefix=uri[len("s3://kept/"):])["Contents"]]
    assert len(keys) == 1 and keys[0].endswith(".jsonl")
    assert any(f"kept at {uri}" in r.getMessage() and f"sagerun sync --from {uri}" in r.getMessage()
               for r in caplog.records)
    with Spool(container.store_path) as spool:
        assert spool.count() == 0  # moved, not copied: the container's disk goes with the job

    metrics_fake.configure(down=False)
    elsewhere = str(tmp_path / "laptop")  # an empty store on another machine
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_url, "AWS_ENDPOINT_URL_SAGEMAKER_METRICS": metrics_fake.url,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("TRAINING_JOB_ARN", None)
    for _ in range(2):  # safe to run twice
        done = subprocess.run([sys.executable, "-m", "sagerun", "sync", "--from", uri, "--store", elsewhere],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert received(metrics_fake) == Counter(("exp-in-job", "loss", s, float(s)) for s in range(120))


def test_with_a_checkpoint_config_the_points_are_kept_in_the_checkpoint_folder(
        session, sagemaker, metrics_fake, tmp_path, monkeypatch):
    checkpoints = tmp_path / "checkpoints"
    arn = sagemaker.create_training_job(**{
        **_job_arguments("train-checkpoint"),
        "CheckpointConfig": {"S3Uri": "s3://ckpt/job/", "LocalPath": str(checkpoints)},
    })["TrainingJobArn"]
    monkeypatch.setenv("TRAINING_JOB_ARN", arn)
    metrics_fake.configure(down=True)
    log_and_close(dataclasses.replace(session, store=str(tmp_path / "container"), retry_deadline=0.5), 30)
    files = list((checkpoints / "sagerun" / "spool").glob("*.jsonl"))
    assert len(files) == 1
    with Spool(str(tmp_path / "elsewhere")) as spool:  # what `sync --from s3://ckpt/job/sagerun/spool/` takes in
        assert spool.import_rows("file", [orjson.loads(line) for line in files[0].read_bytes().splitlines()]) == 30
        assert spool.import_rows("file", []) is None  # taken once


def _job_arguments(name: str) -> dict[str, Any]:
    return dict(TrainingJobName=name, AlgorithmSpecification={"TrainingImage": "image", "TrainingInputMode": "File"},
                RoleArn="arn:aws:iam::123456789012:role/sagemaker", OutputDataConfig={"S3OutputPath": "s3://b/out"},
                ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
                StoppingCondition={"MaxRuntimeInSeconds": 60}, ExperimentConfig=experiment_config("exp", "in-job"))
