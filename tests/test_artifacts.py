"""Artifacts as a user meets them: files to S3 or the local store, charts, tables, previews, limits.

S3 and SageMaker are the moto server. moto answers CreateArtifact and AddAssociation with HTTP 500
(not implemented): the tests that log charts to "SageMaker" check that this is logged at INFO and
that the run still completes with its output artifacts, which is the record users see.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import struct
import tarfile
import time
from pathlib import Path
from typing import Any

import anyio
import boto3
import botocore.config
import numpy as np
import orjson
import pytest
from sklearn import metrics as skm

import sagerun
from sagerun._artifacts import preview, tables
from sagerun._artifacts.documents import open_lines
from sagerun._artifacts.publish import publish_local_artifacts
from sagerun._artifacts.storage import path_of_uri
from sagerun.store import opened
from sagerun.store.queries import find_run
from sagerun.store.records import load_run

ACCOUNT = "123456789012"  # moto's account
DEFAULT_BUCKET = f"sagemaker-us-east-1-{ACCOUNT}"
Y_TRUE = [0, 1, 1, 0, 1, 0, 1, 1, 0, 0]
Y_SCORE = [0.1, 0.8, 0.35, 0.4, 0.9, 0.2, 0.65, 0.55, 0.7, 0.05]
Y_PRED = [int(s > 0.5) for s in Y_SCORE]


@pytest.fixture
def s3(moto_url: str) -> Any:
    return boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                        config=botocore.config.Config(retries={"max_attempts": 1}))


def local(store: Path) -> sagerun.Session:
    return sagerun.Session(backend="local", store=str(store), linger=0.001)


def body(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


# -- SageMaker and S3 --------------------------------------------------------------------------------


async def test_file_goes_to_the_default_bucket_and_the_trial_component_lists_it(session, sagemaker, s3, tmp_path):
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"weights" * 1000)
    base = tmp_path / "base.gz"
    base.write_bytes(b"base model")
    async with sagerun.Run("recsys", "als-64", session=session) as run:
        run.log_artifact("training_data", "s3://data/train.csv", is_output=False)
        uri = await run.log_file(str(model), name="model")
        base_uri = await run.log_file(base, name="base-model", media_type="application/gzip", is_output=False)

    key = "trial-component-artifacts/recsys-als-64/model.tar.gz"
    assert uri == f"s3://{DEFAULT_BUCKET}/{key}"
    assert s3.get_object(Bucket=DEFAULT_BUCKET, Key=key)["Body"].read() == model.read_bytes()
    assert s3.head_object(Bucket=DEFAULT_BUCKET, Key=key)["ContentType"] == "application/x-tar"
    described = sagemaker.describe_trial_component(TrialComponentName="recsys-als-64")
    assert described["OutputArtifacts"] == {"model": {"Value": uri, "MediaType": "application/x-tar"}}
    assert described["InputArtifacts"] == {
        "training_data": {"Value": "s3://data/train.csv"},
        "base-model": {"Value": base_uri, "MediaType": "application/gzip"},
    }
    assert described["Status"]["PrimaryStatus"] == "Completed"


async def test_given_bucket_prefix_and_kms_encryption_are_used(session, sagemaker, s3, tmp_path):
    s3.create_bucket(Bucket="team-artifacts")
    session = dataclasses.replace(session, artifact_sse="aws:kms", artifact_kms_key_id="alias/team-key",
                                  artifact_bucket_owner=ACCOUNT)
    report = tmp_path / "report.csv"
    report.write_text("a,b\n1,2\n")
    async with sagerun.Run("exp", "kms", session=session, artifact_bucket="team-artifacts",
                           artifact_prefix="/runs/") as run:
        uri = await run.log_file(report)
    assert uri == "s3://team-artifacts/runs/exp-kms/report.csv"
    head = s3.head_object(Bucket="team-artifacts", Key="runs/exp-kms/report.csv")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", "alias/team-key")
    assert sagemaker.describe_trial_component(TrialComponentName="exp-kms")["OutputArtifacts"]["report.csv"] == {
        "Value": uri, "MediaType": "text/csv"}


async def test_load_run_takes_the_artifact_bucket_and_prefix_as_the_sdk_does(session, s3, tmp_path):
    s3.create_bucket(Bucket="loaded-artifacts")
    report = tmp_path / "notes.txt"
    report.write_text("loaded")
    async with await sagerun.load_run("loaded", "exp", session=session, artifact_bucket="loaded-artifacts",
                                      artifact_prefix="team") as run:
        uri = await run.log_file(report)
    assert uri == "s3://loaded-artifacts/team/exp-loaded/notes.txt"
    assert s3.get_object(Bucket="loaded-artifacts", Key="team/exp-loaded/notes.txt")["Body"].read() == b"loaded"


async def test_large_file_is_uploaded_in_parts_while_metrics_keep_flowing(session, s3, metrics_fake, tmp_path):
    mib = 1024 * 1024
    big = tmp_path / "checkpoint.bin"
    # Large enough that an upload holding the event loop would stall a step for well over a second.
    big.write_bytes(os.urandom(40 * mib))
    uploaded = anyio.Event()
    gaps: list[float] = []
    async with sagerun.Run("exp", "big", session=session) as run:
        async def upload() -> None:
            await run.log_file(str(big))
            uploaded.set()

        async with anyio.create_task_group() as group:
            group.start_soon(upload)
            step = 0
            # A training loop keeps stepping while the upload runs: the loop is never held up for long.
            while not uploaded.is_set():
                before = time.perf_counter()
                await run.log_metric("loss", 1.0 / (step + 1), step=step)
                await anyio.sleep(0.005)
                gaps.append(time.perf_counter() - before)
                step += 1
            await run.flush()
    assert step > 0 and max(gaps) < 1.0, f"the training loop stalled for {max(gaps):.2f} s during the upload"
    assert sorted(p["step"] for p in metrics_fake.points) == list(range(step))
    key = "trial-component-artifacts/exp-big/checkpoint.bin"
    assert body(s3, f"s3://{DEFAULT_BUCKET}/{key}") == big.read_bytes()
    assert s3.head_object(Bucket=DEFAULT_BUCKET, Key=key)["ETag"].endswith('-5"')  # parts of 8 MiB at most


async def test_charts_match_scikit_learn_and_lineage_failure_is_only_logged(session, sagemaker, s3, caplog):
    caplog.set_level(logging.INFO, logger="sagerun")
    async with sagerun.Run("exp", "charts", session=session) as run:
        cm_uri = await run.log_confusion_matrix(Y_TRUE, Y_PRED, title="val-confusion")
        roc_uri = await run.log_roc_curve(np.array(Y_TRUE), np.array(Y_SCORE), title="val-roc")
        pr_uri = await run.log_precision_recall(Y_TRUE, Y_SCORE, title="val-pr", no_skill=0.5)
        untitled = await run.log_confusion_matrix(Y_TRUE, Y_PRED)

    cm = orjson.loads(body(s3, cm_uri))
    assert cm_uri == f"s3://{DEFAULT_BUCKET}/trial-component-artifacts/exp-charts/val-confusion.json"
    assert cm == {"type": "ConfusionMatrix", "version": 0, "title": "val-confusion", "labels": [0, 1],
                  "confusionMatrix": skm.confusion_matrix(Y_TRUE, Y_PRED).tolist()}
    fpr, tpr, _ = skm.roc_curve(Y_TRUE, Y_SCORE)
    roc = orjson.loads(body(s3, roc_uri))
    assert roc == {"type": "ROCCurve", "version": 0, "title": "val-roc", "falsePositiveRate": fpr.tolist(),
                   "truePositiveRate": tpr.tolist(), "areaUnderCurve": pytest.approx(skm.auc(fpr, tpr))}
    precision, recall, _ = skm.precision_recall_curve(Y_TRUE, Y_SCORE)
    pr = orjson.loads(body(s3, pr_uri))
    assert pr == {"type": "PrecisionRecallCurve", "version": 0, "title": "val-pr", "precision": precision.tolist(),
                  "recall": recall.tolist(), "noSkill": 0.5,
                  "averagePrecisionScore": pytest.approx(skm.average_precision_score(Y_TRUE, Y_SCORE))}
    assert orjson.loads(body(s3, untitled))["title"] is None

    described = sagemaker.describe_trial_component(TrialComponentName="exp-charts")
    outputs = described["OutputArtifacts"]
    assert outputs["val-confusion"] == {"Value": cm_uri, "MediaType": "application/json"}
    assert outputs["val-roc"]["Value"] == roc_uri and outputs["val-pr"]["Value"] == pr_uri
    generated = [name for name in outputs if name.startswith("ConfusionMatrix-")]
    assert len(generated) == 1 and outputs[generated[0]]["Value"] == untitled
    assert described["Status"]["PrimaryStatus"] == "Completed"
    # moto has no CreateArtifact (HTTP 500): said at INFO, once per chart, never raised.
    lineage = [r for r in caplog.records if "no lineage artifact" in r.getMessage()]
    assert len(lineage) == 4 and {r.levelno for r in lineage} == {logging.INFO}


async def test_table_in_s3_is_previewed_from_its_first_lines(session, sagemaker, s3):
    rows = [{"user": u, "item": f"item-{u % 7}", "score": u / 10} for u in range(5000)]
    async with sagerun.Run("recsys", "top10", session=session) as run:
        uri = await run.log_table("top10_recommendations", rows)
    document = orjson.loads(body(s3, uri))
    assert document["type"] == "Table" and document["rowCount"] == 5000
    assert document["columns"] == [{"name": "user", "type": "number"}, {"name": "item", "type": "string"},
                                   {"name": "score", "type": "number"}]
    assert document["rows"][4999] == [4999, "item-1", 499.9]
    assert sagemaker.describe_trial_component(TrialComponentName="recsys-top10")["OutputArtifacts"][
        "top10_recommendations"] == {"Value": uri, "MediaType": "application/json"}

    def first_rows() -> tuple[list[bytes], tables.TablePreview]:
        with open_lines(uri, "/nonexistent", "recsys-top10", session=session, max_lines=5) as lines:
            fetched = list(lines)
        return fetched, tables.read_preview(iter(fetched), 3, uri)

    fetched, shown = await anyio.to_thread.run_sync(first_rows)
    assert len(fetched) == 5  # the head line and four rows, not 5,000
    assert shown.rows == [[0, "item-0", 0.0], [1, "item-1", 0.1], [2, "item-2", 0.2]]
    assert shown.row_count == 5000 and shown.column_names == ["user", "item", "score"]


# -- the local store ------------------------------------------------------------------------------------


async def test_local_store_keeps_files_charts_and_tables(tmp_path):
    store = tmp_path / "store"
    data = tmp_path / "weights.npy"
    data.write_bytes(b"\x93NUMPY" + bytes(range(200)))
    async with sagerun.Run("Recsys", "ALS 64", session=local(store)) as run:
        run.log_artifact("training_data", "s3://data/train.csv", media_type="text/csv", is_output=False)
        await run.log_file(str(data), name="weights")
        await run.log_confusion_matrix(["cat", "dog", "dog"], ["cat", "cat", "dog"], title="val/confusion")
        await run.log_roc_curve(Y_TRUE, Y_SCORE, title="val-roc")
        await run.log_table("by_dict", {"user": np.arange(4), "hit": [True, False, True, None]})

    folder = store / "artifacts" / "recsys-als-64"
    assert (folder / "weights.npy").read_bytes() == data.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["by_dict.json", "val-confusion.json", "val-roc.json",
                                                       "weights.npy"]
    with opened(str(store)) as conn:
        record = load_run(conn, find_run(conn, "recsys/als-64").id)
    assert record.input_artifacts == {"training_data": sagerun_artifact("s3://data/train.csv", "text/csv")}
    outputs = record.output_artifacts
    assert outputs["weights"] == sagerun_artifact((folder / "weights.npy").resolve().as_uri(), None)
    assert path_of_uri(outputs["val/confusion"].value) == str((folder / "val-confusion.json").resolve())
    cm = orjson.loads((folder / "val-confusion.json").read_bytes())
    assert (cm["labels"], cm["confusionMatrix"]) == (["cat", "dog"], [[1, 0], [1, 1]])

    found, shown = preview.table_preview(str(store), "recsys/als-64", "by_dict", rows=3)
    assert shown.columns == [{"name": "user", "type": "number"}, {"name": "hit", "type": "boolean"}]
    assert shown.rows == [[0, True], [1, False], [2, True]] and shown.row_count == 4
    kinds = preview.artifact_kinds(str(store), record.trial_component_name, outputs)
    assert kinds == {"weights": "file", "val/confusion": "ConfusionMatrix", "val-roc": "ROCCurve",
                     "by_dict": "Table (4 rows)"}


def sagerun_artifact(value: str, media_type: str | None) -> Any:
    from sagerun._model.records import Artifact

    return Artifact(value, media_type)


async def test_table_preview_reads_only_the_first_rows(tmp_path):
    store = tmp_path / "store"
    async with sagerun.Run("exp", "tables", session=local(store)) as run:
        uri = await run.log_table("big", {"n": list(range(10_000)), "square": [i * i for i in range(10_000)]})
    path = Path(path_of_uri(uri) or "")
    # Spoil everything after the first rows: a preview that read further would fail to parse.
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:4] + [b"not json"] * 3))
    _, shown = preview.table_preview(str(store), "exp/tables", "big", rows=3)
    assert shown.rows == [[0, 0], [1, 1], [2, 4]] and shown.row_count == 10_000
    with pytest.raises(preview.ArtifactNotFoundError, match="its artifacts: 'big'"):
        preview.table_preview(str(store), "exp/tables", "small")


async def test_dataframe_table(tmp_path):
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"user": [1, 2], "score": [0.5, float("nan")], "when": pandas.to_datetime(
        ["2024-01-01", None]), "tag": ["a", None]})
    async with sagerun.Run("exp", "frame", session=local(tmp_path)) as run:
        uri = await run.log_table("frame", frame)
    document = orjson.loads(Path(path_of_uri(uri) or "").read_bytes())
    assert [c["type"] for c in document["columns"]] == ["number", "number", "datetime", "string"]
    assert document["rows"] == [[1, 0.5, "2024-01-01T00:00:00", "a"], [2, None, None, None]]


def test_table_previews_of_other_layouts():
    # The older tracker's column-wise document, and a table written in one piece.
    older = orjson.dumps({"type": "Table", "version": 0, "title": "t", "fields": [{"name": "x", "type": "number"}],
                          "data": {"x": [1, 2, 3]}})
    shown = tables.read_preview(tables.iter_lines([older[:10], older[10:]]), 2, "older")
    assert (shown.rows, shown.row_count, shown.column_names) == ([[1], [2]], 3, ["x"])
    one_piece = orjson.loads(tables.table_document("t", {"x": [1, 2]}).replace(b"\n", b""))
    assert one_piece["rows"] == [[1], [2]]
    empty = tables.read_preview(tables.table_document("e", {"x": []}).split(b"\n"), 5, "empty")
    assert (empty.rows, empty.row_count) == ([], 0)
    with pytest.raises(ValueError, match="not a table document"):
        tables.read_preview([b'{"type": "ROCCurve"}'], 5, "roc")


async def test_charts_render_to_png_of_the_size_asked(tmp_path):
    pytest.importorskip("matplotlib")
    store = tmp_path / "store"
    async with sagerun.Run("exp", "png", session=local(store)) as run:
        await run.log_confusion_matrix(Y_TRUE, Y_PRED, title="cm")
        await run.log_roc_curve(Y_TRUE, Y_SCORE, title="roc")
        await run.log_precision_recall(Y_TRUE, Y_SCORE, title="pr", no_skill=0.5)
        await run.log_table("t", {"x": [1]})
    for name, size in (("cm", (800, 600)), ("roc", (640, 480)), ("pr", (1000, 500))):
        out = tmp_path / f"{name}.png"
        drawn = preview.chart_png(str(store), "exp/png", name, str(out), width=size[0], height=size[1])
        assert png_size(out) == size and drawn["width"] == size[0]
    assert drawn["type"] == "PrecisionRecallCurve"
    with pytest.raises(ValueError, match="'t' of run exp/png is not a chart"):
        preview.chart_png(str(store), "exp/png", "t", str(tmp_path / "t.png"))


async def test_sync_uploads_local_artifacts(session, sagemaker, s3, tmp_path):
    store = tmp_path / "store"
    data = tmp_path / "data.csv"
    data.write_text("x\n1\n")
    async with sagerun.Run("exp", "offline", session=local(store)) as run:
        run.log_artifact("source", "s3://elsewhere/source.csv", is_output=False)
        await run.log_file(str(data))
        await run.log_roc_curve(Y_TRUE, Y_SCORE, title="roc")
    with opened(str(store)) as conn:
        record = load_run(conn, find_run(conn, "exp/offline").id)
    from sagerun.backends.sagemaker import SageMakerBackend

    async with SageMakerBackend(session) as backend:
        record = await backend.open_run(record)
        published = await publish_local_artifacts(session, record, str(store))
        await backend.save_run(published)
    prefix = f"s3://{DEFAULT_BUCKET}/trial-component-artifacts/exp-offline"
    outputs = sagemaker.describe_trial_component(TrialComponentName="exp-offline")["OutputArtifacts"]
    assert outputs == {"data.csv": {"Value": f"{prefix}/data.csv", "MediaType": "text/csv"},
                       "roc": {"Value": f"{prefix}/roc.json", "MediaType": "application/json"}}
    assert body(s3, f"{prefix}/data.csv") == b"x\n1\n"
    assert published.input_artifacts["source"].value == "s3://elsewhere/source.csv"
    assert record.output_artifacts["data.csv"].value.startswith("file://")  # the local record is unchanged


# -- limits and bad inputs ---------------------------------------------------------------------------


async def test_31st_artifact_is_refused(tmp_path):
    async with sagerun.Run("exp", "limits", session=local(tmp_path)) as run:
        for n in range(30):
            run.log_artifact(f"out-{n}", f"s3://b/{n}")
            run.log_artifact(f"in-{n}", f"s3://b/{n}", is_output=False)
        run.log_artifact("out-0", "s3://b/replaced")  # a name held is replaced, not added
        with pytest.raises(ValueError, match="at most 30 output artifacts"):
            run.log_artifact("out-30", "s3://b/30")
        with pytest.raises(ValueError, match="at most 30 input artifacts"):
            run.log_artifact("in-30", "s3://b/30", is_output=False)
        with pytest.raises(ValueError, match="at most 30 output artifacts"):
            await run.log_table("one-more", {"x": [1]})
        file = tmp_path / "f.txt"
        file.write_text("x")
        with pytest.raises(ValueError, match="at most 30 output artifacts"):
            await run.log_file(str(file))
    assert not (tmp_path / "artifacts" / "exp-limits").exists()  # nothing was stored for the refused ones
    with opened(str(tmp_path)) as conn:
        record = load_run(conn, find_run(conn, "exp/limits").id)
    assert len(record.output_artifacts) == 30 and record.output_artifacts["out-0"].value == "s3://b/replaced"


async def test_bad_inputs_are_clear_errors_at_the_call(tmp_path):
    run = sagerun.Run("exp", "bad", session=local(tmp_path))
    with pytest.raises(sagerun.RunNotOpenError, match=r"log_file\(\) works inside the run's 'with' block"):
        await run.log_file(str(tmp_path))
    with pytest.raises(TypeError, match="artifact_bucket must be a str"):
        sagerun.Run("exp", "bad", artifact_bucket=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="without s3://"):
        sagerun.Run("exp", "bad", artifact_bucket="s3://bucket/key")
    async with run:
        with pytest.raises(ValueError, match="missing.bin does not exist"):
            await run.log_file(str(tmp_path / "missing.bin"))
        os.mkfifo(tmp_path / "pipe")
        with pytest.raises(ValueError, match="is not a regular file or a folder"):
            await run.log_file(str(tmp_path / "pipe"))
        with pytest.raises(ValueError, match="y_true has 3 values but y_pred has 2"):
            await run.log_confusion_matrix([0, 1, 1], [0, 1])
        with pytest.raises(ValueError, match="y_true has 2 values but y_score has 3"):
            await run.log_roc_curve([0, 1], [0.1, 0.2, 0.3])
        with pytest.raises(ValueError, match="y_true has 1 values but predicted_probabilities has 2"):
            await run.log_precision_recall([1], [0.1, 0.2])
        with pytest.raises(ValueError, match="are empty"):
            await run.log_roc_curve([], [])
        with pytest.raises(TypeError, match="title must be a str"):
            await run.log_roc_curve([0, 1], [0.1, 0.9], title=5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="columns must be the same length"):
            await run.log_table("t", {"a": [1, 2], "b": [1]})
        with pytest.raises(TypeError, match="DataFrame, a dict of columns"):
            await run.log_table("t", "not a table")
        with pytest.raises(TypeError, match="list of row dicts; row 1"):
            await run.log_table("t", [{"a": 1}, [2]])
        with pytest.raises(ValueError, match="media_type must look like"):
            run.log_artifact("x", "s3://b/x", media_type="application/vnd.ms-excel")
        with pytest.raises(ValueError, match="artifact name must be 1 to 128"):
            run.log_artifact("", "s3://b/x")
        with pytest.raises(TypeError, match="value must be a str"):
            run.log_artifact("x", 3)  # type: ignore[arg-type]
        report = tmp_path / "sheet.xlsx"
        report.write_bytes(b"PK")
        await run.log_file(str(report))  # a guessed type SageMaker would refuse is left out, not an error
    with opened(str(tmp_path)) as conn:
        record = load_run(conn, find_run(conn, "exp/bad").id)
    assert list(record.output_artifacts) == ["sheet.xlsx"] and record.output_artifacts["sheet.xlsx"].media_type is None
    with pytest.raises(RuntimeError, match="is closed"):
        run.log_artifact("late", "s3://b/late")


async def test_two_files_of_one_name_sharing_an_object_is_warned_about(tmp_path, caplog):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "model.pt").write_text(folder)
    async with sagerun.Run("exp", "shared", session=local(tmp_path / "store")) as run:
        first = await run.log_file(str(tmp_path / "a" / "model.pt"), name="first")
        second = await run.log_file(str(tmp_path / "b" / "model.pt"), name="second")
    assert first == second  # the SageMaker SDK's layout: <prefix>/<trial component>/<file name>
    assert any("replaced the file of artifact 'first'" in r.getMessage() for r in caplog.records)


async def test_a_folder_is_stored_as_a_tar_gz_of_its_content(tmp_path):
    checkpoint = tmp_path / "checkpoint-500"
    (checkpoint / "nested").mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    (checkpoint / "nested" / "state.json").write_text("{}")
    async with sagerun.Run("exp", "folder", session=local(tmp_path / "store")) as run:
        uri = await run.log_file(str(checkpoint))
    assert uri.endswith("/checkpoint-500.tar.gz")
    with opened(str(tmp_path / "store")) as conn:
        artifact = load_run(conn, find_run(conn, "exp/folder").id).output_artifacts["checkpoint-500"]
    assert artifact.value == uri and artifact.media_type == "application/gzip"
    with tarfile.open(path_of_uri(uri)) as archive:
        assert sorted(archive.getnames()) == ["model.safetensors", "nested", "nested/state.json"]
        assert archive.extractfile("model.safetensors").read() == b"weights"
