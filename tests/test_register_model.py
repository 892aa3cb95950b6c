"""run.register_model as a user meets it: the model package and its group in moto, the registered
model version MlflowClient reads, the local store's versions that `sagerun models` lists."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import uuid

import boto3
import pytest
from mlflow.tracking import MlflowClient

import sagerun
import sagerun.sync
from older_store import older_store


def model_folder(tmp_path):
    folder = tmp_path / "model"
    (folder / "code").mkdir(parents=True)
    (folder / "model.json").write_text('{"weights": [1, 2, 3]}')
    (folder / "code" / "inference.py").write_text("def predict(x): return x\n")
    return folder


def s3_object(moto_url: str, uri: str) -> bytes:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_on_sagemaker_a_version_in_a_new_group_that_names_its_run(session, sagemaker, moto_url, tmp_path):
    with sagerun.sync.Run("models", "train-1", session=session) as run:
        first = run.register_model("churn-xgb", str(model_folder(tmp_path)), description="first fit",
                                   image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/xgb:1",
                                   tags={"team": "search"})
        second = run.register_model("churn-xgb", "s3://models-bucket/churn/model.tar.gz", approval_status="Approved")
    assert (first.group, first.version, second.version) == ("churn-xgb", 1, 2)
    group = sagemaker.describe_model_package_group(ModelPackageGroupName="churn-xgb")
    assert group["ModelPackageGroupName"] == "churn-xgb"
    package = sagemaker.describe_model_package(ModelPackageName=first.id)
    assert package["ModelPackageGroupName"] == "churn-xgb" and package["ModelPackageVersion"] == 1
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["ModelPackageDescription"] == "first fit"
    assert package["CustomerMetadataProperties"]["sagerun:trial-component"] == run.trial_component_name
    assert package["CustomerMetadataProperties"]["sagerun:experiment"] == "models"
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["Image"].endswith("/xgb:1") and container["ModelDataUrl"] == first.model_data
    described = sagemaker.describe_trial_component(TrialComponentName=run.trial_component_name)
    assert package["MetadataProperties"]["GeneratedBy"] == described["TrialComponentArn"]
    # The folder went up as one archive, its content at the top, and the run lists it.
    with tarfile.open(fileobj=io.BytesIO(s3_object(moto_url, first.model_data))) as archive:
        assert sorted(archive.getnames()) == ["code", "code/inference.py", "model.json"]
    assert described["OutputArtifacts"]["model:churn-xgb"]["Value"] == "s3://models-bucket/churn/model.tar.gz"
    approved = sagemaker.describe_model_package(ModelPackageName=second.id)
    assert approved["ModelApprovalStatus"] == "Approved"
    assert approved["CustomerMetadataProperties"]["sagerun:model-data"] == "s3://models-bucket/churn/model.tar.gz"
    assert "InferenceSpecification" not in approved


def test_bad_input_is_refused_at_the_call_and_the_run_goes_on(session, metrics_fake, tmp_path):
    with sagerun.sync.Run("models", "bad", session=session) as run:
        run.log_metric("loss", 0.5, step=0)
        with pytest.raises(ValueError, match="model_package_group must be 1 to 63 letters"):
            run.register_model("churn_xgb", "s3://b/k")
        with pytest.raises(ValueError, match="neither an s3:// URI nor an existing file"):
            run.register_model("churn", str(tmp_path / "missing.pt"))
        with pytest.raises(ValueError, match="approval_status must be one of"):
            run.register_model("churn", "s3://b/k", approval_status="approved")
        with pytest.raises(TypeError, match="model_data must be"):
            run.register_model("churn", 42)
    assert [p["value"] for p in metrics_fake.points if p["name"] == "loss"] == [0.5]


def test_on_mlflow_a_registered_model_version_of_the_run(mlflow_server, tmp_path):
    session = sagerun.Session(backend="mlflow", tracking_uri=mlflow_server.url, store=str(tmp_path / "store"))
    group = f"churn-{uuid.uuid4().hex[:8]}"
    weights = tmp_path / "model.pt"
    weights.write_bytes(b"\x00weights")
    with sagerun.sync.Run("models-mlflow", "r1", session=session) as run:
        first = run.register_model(group, str(weights), description="first", tags={"team": "search"})
        second = run.register_model(group, str(weights), approval_status="Approved")
        in_s3 = run.register_model(group, "s3://models-bucket/churn/model.tar.gz", image_uri="xgb:1")
    client = MlflowClient(tracking_uri=mlflow_server.url)
    assert client.get_registered_model(group).tags == {"team": "search"}
    version = client.get_model_version(group, str(first.version))
    assert (first.version, second.version) == (1, 2) and first.id == f"models:/{group}/1"
    assert version.run_id == run.trial_component_name and version.description == "first"
    assert version.source == first.model_data
    assert version.tags["approval_status"] == "PendingManualApproval"
    assert client.get_model_version(group, "2").tags["approval_status"] == "Approved"
    from_s3 = client.get_model_version(group, str(in_s3.version))
    assert from_s3.source == "s3://models-bucket/churn/model.tar.gz" and from_s3.tags["image_uri"] == "xgb:1"
    listed = [a.path for a in client.list_artifacts(run.trial_component_name)]
    assert "model.pt" in listed


def test_the_local_store_numbers_versions_and_sagerun_models_lists_them(tmp_path):
    store = str(tmp_path / "store")
    session = sagerun.Session(backend="local", store=store)
    folder = model_folder(tmp_path)
    for name in ("a", "b"):
        with sagerun.sync.Run("models-local", name, session=session) as run:
            run.register_model("digits", str(folder))
    listed = json.loads(subprocess.run([sys.executable, "-m", "sagerun", "models", "--json", "--store", store],
                                       capture_output=True, text=True, check=True).stdout)
    assert [(v["group"], v["version"], v["run"]) for v in listed] == [
        ("digits", 1, "models-local-a"), ("digits", 2, "models-local-b")]
    with tarfile.open(listed[1]["model_data"].removeprefix("file://")) as archive:
        assert "model.json" in archive.getnames()
    shown = json.loads(subprocess.run([sys.executable, "-m", "sagerun", "show", "models-local/b", "--json", "--store",
                                       store], capture_output=True, text=True, check=True).stdout)
    assert [m["id"] for m in shown["models"]] == ["models:/digits/2"]
    assert shown["artifacts"]["output"]["model:digits"]["value"] == listed[1]["model_data"]
    text = subprocess.run([sys.executable, "-m", "sagerun", "models", "digits", "--store", store],
                          capture_output=True, text=True, check=True).stdout
    assert "digits" in text and "PendingManualApproval" in text


def test_a_store_of_the_version_before_gains_the_models_table(tmp_path):
    session = older_store(tmp_path / "old", "DROP TABLE models", 3)
    with sagerun.sync.Run("exp", "after", session=session) as run:
        version = run.register_model("m", "s3://bucket/m.tar.gz")
    assert (version.version, version.model_data, version.run) == (1, "s3://bucket/m.tar.gz", "exp-after")
