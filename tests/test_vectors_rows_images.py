"""log_list, log_row and log_image as a user meets them: what the endpoint, S3, MLflow and the CLI show."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import boto3
import numpy as np
import orjson
import pytest
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient

import sagerun
import sagerun.sync

PNG_1PX = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360f80f0000010101001805ddb40000000049454e44ae426082")
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32


def figure() -> Figure:
    fig = Figure(figsize=(2, 1), dpi=50)
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


@pytest.fixture
def local(tmp_path):
    return sagerun.Session(backend="local", store=str(tmp_path / "store"), linger=0.001)


def s3_body(moto_url: str, uri: str) -> bytes:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_on_sagemaker_a_vector_is_steps_and_images_and_rows_are_objects(session, metrics_fake, sagemaker,
                                                                         moto_url, tmp_path):
    png = tmp_path / "sample.png"
    png.write_bytes(PNG_1PX)
    with sagerun.sync.Run("media", "r1", session=session) as run:
        run.log_list("lr", np.geomspace(1e-2, 1e-4, 50))
        run.log_list("val_acc", [0.5, 0.6, 0.7])
        sample = run.log_image("sample", path=str(png))
        drawn = run.log_image("curve", figure=figure())
        for epoch in range(3):
            run.log_row("per-epoch", epoch=epoch, loss=1 / (epoch + 1))
        run.flush()
        run.log_row("per-epoch", epoch=3, loss=0.2, note="late")  # after a flush: stored again at close
    got: dict[str, list[tuple[int, float]]] = {}
    for point in metrics_fake.points:
        got.setdefault(point["name"], []).append((point["step"], point["value"]))
    assert sorted(got["val_acc"]) == [(0, 0.5), (1, 0.6), (2, 0.7)]
    assert [s for s, _ in sorted(got["lr"])] == list(range(50)) and sorted(got["lr"])[49][1] == pytest.approx(1e-4)
    outputs = sagemaker.describe_trial_component(TrialComponentName="media-r1")["OutputArtifacts"]
    assert outputs["sample"] == {"Value": sample, "MediaType": "image/png"}
    assert s3_body(moto_url, sample) == PNG_1PX
    assert outputs["curve"]["MediaType"] == "image/png" and s3_body(moto_url, drawn).startswith(b"\x89PNG")
    table = orjson.loads(s3_body(moto_url, outputs["per-epoch"]["Value"]))
    assert table["rowCount"] == 4 and [c["name"] for c in table["columns"]] == ["epoch", "loss", "note"]
    assert table["rows"][3] == [3, 0.2, "late"] and table["rows"][0][2] is None


def test_in_mlflow_the_vector_and_the_image_are_read_back(mlflow_server, tmp_path):
    session = sagerun.Session(backend="mlflow", tracking_uri=mlflow_server.url, store=str(tmp_path / "store"),
                              retry_deadline=5.0, close_timeout=10.0, linger=0.005)
    jpeg = tmp_path / "photo.jpg"
    jpeg.write_bytes(JPEG_HEAD)
    with sagerun.sync.Run(f"media-{uuid.uuid4().hex[:6]}", "r1", session=session) as run:
        run.log_list("lr", [0.1, 0.05, 0.01])
        run.log_image("photo", path=str(jpeg))
        run.log_row("per-epoch", epoch=0, loss=0.5)
    client = MlflowClient(tracking_uri=mlflow_server.url)
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.trial_component_name, "lr"))
    assert history == [(0, 0.1), (1, 0.05), (2, 0.01)]
    names = {a.path for a in client.list_artifacts(run.trial_component_name)}
    assert {"photo.jpg", "per-epoch.json"} <= names
    back = client.download_artifacts(run.trial_component_name, "photo.jpg", str(tmp_path / "back"))
    assert open(back, "rb").read() == JPEG_HEAD


def test_in_the_local_store_sagerun_table_previews_the_rows(local):
    with sagerun.sync.Run("media", "local", session=local) as run:
        for step in range(1_000):
            run.log_row("preds", step=step, score=step / 1_000)
        run.log_list("curve", np.arange(5.0))
    store = local.store_path
    shown = json.loads(subprocess.run([sys.executable, "-m", "sagerun", "table", "media/local", "preds", "-n", "2",
                                       "--json", "--store", store], capture_output=True, text=True, check=True).stdout)
    assert shown["row_count"] == 1_000 and shown["rows"] == [[0, 0.0], [1, 0.001]]
    summary: Any = json.loads(subprocess.run([sys.executable, "-m", "sagerun", "show", "media/local", "--json",
                                              "--store", store], capture_output=True, text=True, check=True).stdout)
    assert {m["name"]: (m["count"], m["last_step"]) for m in summary["metrics"]} == {"curve": (5, 4)}
    assert summary["artifacts"]["output"]["preds"]["kind"] == "Table (1,000 rows)"


@pytest.mark.parametrize("call, error, message", [
    (lambda run, p: run.log_image("x"), ValueError, "exactly one of path"),
    (lambda run, p: run.log_image("x", path=p, figure=figure()), ValueError, "got both"),
    (lambda run, p: run.log_image("x", path=__file__), ValueError, "is not a PNG or JPEG"),
    (lambda run, p: run.log_image("x", figure="plot"), TypeError, "must be a matplotlib Figure"),
    (lambda run, p: run.log_list("v", 3.0), TypeError, "a list or a 1-d array"),
    (lambda run, p: run.log_list("v", []), ValueError, "is empty"),
    (lambda run, p: run.log_list("v", [[1.0]]), TypeError, "a list or a 1-d array"),
    (lambda run, p: run.log_row("t"), ValueError, "got no columns"),
    (lambda run, p: run.log_row("t", model=object()), TypeError, "column 'model': a cell must be"),
])
def test_bad_input_is_refused_at_the_call_and_nothing_logged_is_lost(local, tmp_path, call, error, message):
    png = tmp_path / "ok.png"
    png.write_bytes(PNG_1PX)
    with sagerun.sync.Run("media", "bad", session=local) as run:
        run.log_row("kept", a=1)
        run.log_list("kept_curve", [1.0, 2.0])
        with pytest.raises(error, match=message):
            call(run, str(png))
    shown = json.loads(subprocess.run([sys.executable, "-m", "sagerun", "show", "media/bad", "--json", "--store",
                                       local.store_path], capture_output=True, text=True, check=True).stdout)
    assert shown["status"] == "Completed" and "kept" in shown["artifacts"]["output"]
    assert [m["count"] for m in shown["metrics"]] == [2]
