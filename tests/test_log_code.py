"""log_code: the archive a user finds in S3 or the local store, without what git ignores or secrets."""

from __future__ import annotations

import io
import json
import tarfile

import boto3
import pytest

import sagerun
import sagerun.sync
from sagerun._artifacts.storage import path_of_uri


def make_project(root):
    files = {
        "train.py": "print('train')\n", "pkg/model.py": "W = 1\n", "pkg/scratch.tmp": "x",
        "pkg/.gitignore": "*.tmp\n", ".gitignore": "data/\n*.log\n", "data/big.bin": "b" * 10,
        "run.log": "log", ".sagerunignore": "notes/\n", "notes/todo.md": "t",
        ".env": "AWS_SECRET_ACCESS_KEY=x", "id_rsa": "k", "id_rsa.pub": "k", "deploy/key.pem": "k",
        "deploy/tls.key": "k", "home/.aws/credentials": "k", ".git/config": "[core]",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


EXPECTED = [".gitignore", ".sagerunignore", "pkg/.gitignore", "pkg/model.py", "train.py"]


def test_the_archive_in_s3_holds_the_code_and_no_secret(session, sagemaker, moto_url, tmp_path):
    make_project(tmp_path / "proj")
    with sagerun.sync.Run("code", "r1", session=session) as run:
        uri = run.log_code(str(tmp_path / "proj"))
    described = sagemaker.describe_trial_component(TrialComponentName="code-r1")
    assert described["InputArtifacts"]["code"] == {"Value": uri, "MediaType": "application/gzip"}
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").get_object(
        Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert sorted(tar.getnames()) == EXPECTED
        assert tar.extractfile("train.py").read() == b"print('train')\n"


def test_too_large_says_what_was_largest_and_uploads_nothing(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "weights.bin").write_bytes(b"0" * 3_000_000)
    (tmp_path / "proj" / "a.py").write_text("a")
    session = sagerun.Session(backend="local", store=str(tmp_path / "store"), linger=0.001)
    with sagerun.sync.Run("code", "big", session=session) as run:
        with pytest.raises(ValueError, match=r"over max_bytes \(1.0 MiB\); the largest: weights.bin \(2.9 MiB\)"):
            run.log_code(str(tmp_path / "proj"), max_bytes=2**20)
        with pytest.raises(ValueError, match="not a folder"):
            run.log_code(str(tmp_path / "proj" / "a.py"))
        local = run.log_code(str(tmp_path / "proj"))
    with tarfile.open(path_of_uri(local)) as tar:
        assert sorted(tar.getnames()) == ["a.py", "weights.bin"]


def test_in_a_training_job_the_jobs_own_source_archive_is_recorded(session, sagemaker, moto_url, tmp_path,
                                                                    monkeypatch):
    hyperparameters = tmp_path / "hyperparameters.json"
    source = "s3://sagemaker-us-east-1-123456789012/job-1/source/sourcedir.tar.gz"
    hyperparameters.write_text(json.dumps({"sagemaker_submit_directory": json.dumps(source), "epochs": "3"}))
    monkeypatch.setenv("SAGERUN_HYPERPARAMETERS", str(hyperparameters))
    monkeypatch.setenv("TRAINING_JOB_ARN", "arn:aws:sagemaker:us-east-1:123456789012:training-job/job-1")
    make_project(tmp_path / "proj")
    with sagerun.sync.Run("code", "in-job", session=session) as run:
        assert run.log_code(str(tmp_path / "proj")) == source
    described = sagemaker.describe_trial_component(TrialComponentName="code-in-job")
    assert described["InputArtifacts"]["code"]["Value"] == source
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    keys = [o["Key"] for b in s3.list_buckets()["Buckets"]
            for o in s3.list_objects_v2(Bucket=b["Name"]).get("Contents", [])]
    assert not [key for key in keys if key.endswith("code.tar.gz")]  # nothing uploaded again
