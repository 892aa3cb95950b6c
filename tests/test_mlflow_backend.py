"""The mlflow backend against a real MLflow server: what MLflow's own client reads back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import aioboto3
import pytest
from mlflow.tracking import MlflowClient

import sagerun
import sagerun.sync

ARN = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/test-server"


@pytest.fixture
def mlflow_session(mlflow_server, tmp_path):
    return sagerun.Session(backend="mlflow", tracking_uri=mlflow_server.url, store=str(tmp_path / "store"),
                           retry_initial=0.01, retry_max_backoff=0.05, retry_deadline=5.0, close_timeout=10.0,
                           linger=0.005)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def the_run(client: MlflowClient, experiment: str, run_name: str):
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id], filter_string=f"attributes.run_name = '{run_name}'")
    assert len(runs) == 1, runs
    return runs[0]


def senders() -> int:
    """This process's sagerun sender processes, from /proc."""
    me, found = str(os.getpid()), 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                found += stat.read().rsplit(")", 1)[1].split()[1] == me and b"sagerun._ingest.sender" in cmdline.read()
        except OSError:
            pass
    return found


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


async def test_a_run_is_an_mlflow_run_with_its_params_tags_and_exact_histories(mlflow_server, mlflow_session):
    experiment, name = unique("exp"), unique("run")
    async with sagerun.Run(experiment, name, session=mlflow_session, tags=[{"Key": "team", "Value": "vision"}]) as run:
        run.log_parameters({"lr": 0.01, "epochs": 3, "optimizer": "adam"})
        for step in range(1_500):  # two log-batch requests' worth and a half
            await run.log_metric("loss", 1 / (step + 1), step=step)
            await run.log_metric("acc", step / 1_500, step=step)
        assert senders() == 1  # sent from the run's sender process, as for SageMaker
    client = MlflowClient(tracking_uri=mlflow_server.url)
    found = the_run(client, experiment, name)
    assert run.trial_component_name == found.info.run_id
    assert found.info.status == "FINISHED" and found.info.end_time >= found.info.start_time
    assert found.data.params == {"lr": "0.01", "epochs": "3", "optimizer": "adam"}
    assert found.data.tags["team"] == "vision"
    assert history(client, found.info.run_id, "loss") == [(s, 1 / (s + 1)) for s in range(1_500)]
    assert history(client, found.info.run_id, "acc") == [(s, s / 1_500) for s in range(1_500)]


def test_a_failing_block_fails_the_run_with_its_message(mlflow_server, mlflow_session):
    experiment, name = unique("exp"), unique("run")
    with pytest.raises(ZeroDivisionError):
        with sagerun.sync.Run(experiment, name, session=mlflow_session) as run:
            run.log_metric("loss", 0.5, step=0)
            1 / 0
    found = the_run(MlflowClient(tracking_uri=mlflow_server.url), experiment, name)
    assert found.info.status == "FAILED"
    assert found.data.tags["sagerun.status_message"] == "ZeroDivisionError: division by zero"
    assert [m.value for m in MlflowClient(tracking_uri=mlflow_server.url).get_metric_history(found.info.run_id, "loss")] \
        == [0.5]


def test_a_parameter_keeps_its_first_value_and_says_so_at_the_call(mlflow_server, mlflow_session):
    experiment, name = unique("exp"), unique("run")
    with sagerun.sync.Run(experiment, name, session=mlflow_session) as run:
        run.log_parameter("lr", 0.1)
        run.flush()
        run.log_parameter("lr", 0.1)  # the same value again is fine
        with pytest.raises(ValueError, match="parameter 'lr' has the value 0.1 already.*MLflow keeps the first"):
            run.log_parameter("lr", 0.2)
        run.log_parameter("lr-2", 0.2)
    found = the_run(MlflowClient(tracking_uri=mlflow_server.url), experiment, name)
    assert found.data.params == {"lr": "0.1", "lr-2": "0.2"}
    assert found.info.status == "FINISHED"


def test_the_same_names_resume_the_run_and_load_run_resumes_mlflow_run_id(mlflow_server, mlflow_session, monkeypatch):
    experiment, name = unique("exp"), unique("run")
    with sagerun.sync.Run(experiment, name, session=mlflow_session) as first:
        first.log_parameter("seed", 7)
        first.log_metric("loss", 1.0, step=0)
    with sagerun.sync.Run(experiment, name, session=mlflow_session) as again:
        assert again.trial_component_name == first.trial_component_name
        assert again.parameters == {"seed": 7}  # read back as the number it was
        again.log_metric("loss", 0.5, step=1)
    monkeypatch.setenv("MLFLOW_RUN_ID", first.trial_component_name)
    with sagerun.sync.load_run(session=mlflow_session) as loaded:
        assert loaded.trial_component_name == first.trial_component_name
        loaded.log_metric("loss", 0.25, step=2)
    client = MlflowClient(tracking_uri=mlflow_server.url)
    assert history(client, first.trial_component_name, "loss") == [(0, 1.0), (1, 0.5), (2, 0.25)]
    listed = sagerun.sync.list_runs(experiment, session=mlflow_session)
    assert [r.trial_component_name for r in listed] == [first.trial_component_name]


def test_load_run_opens_a_run_of_mlflow_experiment_name_named_after_the_job(mlflow_server, mlflow_session,
                                                                             monkeypatch):
    experiment, job = unique("exp"), unique("train-job")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
    monkeypatch.setenv("TRAINING_JOB_ARN", f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{job}")
    for attempt in range(2):  # a restarted job (a spot interruption) resumes the same run
        with sagerun.sync.load_run(session=mlflow_session) as run:
            run.log_metric("loss", 1.0 / (attempt + 1), step=attempt)
    client = MlflowClient(tracking_uri=mlflow_server.url)
    found = the_run(client, experiment, job)
    assert history(client, found.info.run_id, "loss") == [(0, 1.0), (1, 0.5)]


def test_a_sagemaker_arn_is_signed_with_sigv4_and_names_the_server(mlflow_server, sigv4_proxy, tmp_path, monkeypatch):
    # SageMaker's managed MLflow, stood for by a proxy that checks every request's signature with
    # botocore and the ARN header, in front of the real server.
    monkeypatch.setenv("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT", sigv4_proxy.url)
    session = sagerun.Session(backend="mlflow", tracking_uri=ARN, store=str(tmp_path / "store"), region="us-east-1")
    experiment, name = unique("exp"), unique("run")
    with sagerun.sync.Run(experiment, name, session=session) as run:
        run.log_parameter("lr", 0.01)
        run.log_metrics({"loss": [float(i) for i in range(2_000)]}, step=list(range(2_000)))
        run.flush()
        assert senders() == 1  # which signs with the credentials the run pushes to it
    assert sigv4_proxy.refused == 0 and sigv4_proxy.accepted >= 6
    client = MlflowClient(tracking_uri=mlflow_server.url)
    found = the_run(client, experiment, name)
    assert found.info.status == "FINISHED" and found.data.params == {"lr": "0.01"}
    assert history(client, found.info.run_id, "loss") == [(i, float(i)) for i in range(2_000)]


def test_unsigned_or_wrongly_signed_requests_are_refused_with_a_clear_error(sigv4_proxy, tmp_path, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT", sigv4_proxy.url)
    wrong = aioboto3.Session(aws_access_key_id="testing", aws_secret_access_key="not-the-secret",
                             region_name="us-east-1")
    session = sagerun.Session(backend="mlflow", tracking_uri=ARN, store=str(tmp_path / "store"), boto_session=wrong)
    with pytest.raises(sagerun.BackendError, match="PERMISSION_DENIED"):
        with sagerun.sync.Run(unique("exp"), unique("run"), session=session):
            pass
    assert sigv4_proxy.refused >= 1 and sigv4_proxy.accepted == 0


def test_a_server_killed_mid_run_loses_nothing_and_sagerun_sync_sends_the_rest(mlflow_server, tmp_path):
    store = str(tmp_path / "store")
    # Retries would go on for 30 s: the close, metrics and final status together, takes close_timeout.
    session = sagerun.Session(backend="mlflow", tracking_uri=mlflow_server.url, store=store, retry_initial=0.05,
                              retry_max_backoff=0.2, retry_deadline=30.0, close_timeout=4.0, linger=0.005)
    experiment, name = unique("exp"), unique("run")
    with sagerun.sync.Run(experiment, name, session=session) as run:
        for step in range(500):
            run.log_metric("loss", float(step), step=step)
        run.flush()
        mlflow_server.kill()
        for step in range(500, 1_000):
            run.log_metric("loss", float(step), step=step)
        started = time.monotonic()
    closed_in = time.monotonic() - started
    try:
        assert closed_in < session.close_timeout + 1.5, closed_in
        stats = run.ingest_stats
        assert stats.delivered + stats.failed == 1_000 and stats.failed >= 500
    finally:
        mlflow_server.restart()
    env = {**os.environ, "SAGERUN_BACKEND": "mlflow", "MLFLOW_TRACKING_URI": mlflow_server.url, "SAGERUN_HOME": store}
    for _ in range(2):  # and a second time: nothing left, nothing sent twice
        done = subprocess.run([sys.executable, "-m", "sagerun", "sync"], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
    client = MlflowClient(tracking_uri=mlflow_server.url)
    found = the_run(client, experiment, name)
    assert history(client, found.info.run_id, "loss") == [(s, float(s)) for s in range(1_000)]
    assert found.info.status == "FINISHED"  # the final status, kept when the server was down, saved by sync


def test_the_example_logs_its_loop_to_the_server(mlflow_server, tmp_path):
    script = os.path.join(os.path.dirname(__file__), "..", "examples", "mlflow_training.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGERUN_", "MLFLOW_"))}
    env.update(MLFLOW_TRACKING_URI=mlflow_server.url, SAGERUN_HOME=str(tmp_path / "store"))
    done = subprocess.run([sys.executable, script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "505 points delivered" in done.stdout, done.stdout
    client = MlflowClient(tracking_uri=mlflow_server.url)
    runs = client.search_runs([client.get_experiment_by_name("linear-regression").experiment_id],
                              filter_string="attributes.run_name = 'mlflow-sgd'")
    found = runs[0]
    assert found.info.status == "FINISHED" and found.data.params == {"lr": "0.05", "batch": "20", "epochs": "5"}
    assert len(client.get_metric_history(found.info.run_id, "train_mse")) == 500
    assert [m.step for m in client.get_metric_history(found.info.run_id, "epoch_mse")] == list(range(5))


def test_a_tracking_uri_sagerun_cannot_reach_is_refused_naming_it(tmp_path):
    with pytest.raises(ValueError, match="tracking_uri must be an http"):
        sagerun.Session(backend="mlflow", tracking_uri="sqlite:///mlflow.db")
    session = sagerun.Session(backend="mlflow", tracking_uri="arn:aws:sagemaker:us-east-1:123456789012:endpoint/x",
                              store=str(tmp_path))
    with pytest.raises(sagerun.BackendError, match="is not the ARN of a SageMaker MLflow tracking server"):
        with sagerun.sync.Run("exp", "run", session=session):
            pass


def test_files_go_through_the_servers_artifact_api(mlflow_server, mlflow_session, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("lr 0.01 was best\n")
    experiment, name = unique("exp"), unique("run")
    with sagerun.sync.Run(experiment, name, session=mlflow_session) as run:
        uri = run.log_file(str(notes), name="notes")
        table = run.log_table("top-5", {"item": ["a", "b"], "score": [0.9, 0.8]})
    client = MlflowClient(tracking_uri=mlflow_server.url)
    found = the_run(client, experiment, name)
    assert uri == f"{found.info.artifact_uri}/notes.txt"
    listed = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"notes.txt", table.rsplit("/", 1)[1]} <= listed, listed
    local = client.download_artifacts(found.info.run_id, "notes.txt", str(tmp_path / "back"))
    assert open(local).read() == "lr 0.01 was best\n"
    assert found.data.tags["sagerun.artifact.notes"] == uri


def test_tables_are_mlflow_tables_and_charts_come_with_an_image(mlflow_server, mlflow_session, tmp_path,
                                                                monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)  # load_table searches the default server
    experiment, name = unique("exp"), unique("run")
    with sagerun.sync.Run(experiment, name, session=mlflow_session) as run:
        run.log_table("top-3", [{"item": "a", "score": 0.9}, {"item": "b", "score": 0.8}, {"item": "c"}])
        run.log_table("folds", {"fold": [1, 2], "auc": [0.71, 0.74]})
        run.log_confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0], title="val-cm")
    client = MlflowClient(tracking_uri=mlflow_server.url)
    found = the_run(client, experiment, name)
    # What mlflow.log_table leaves: the tag MLflow's UI lists tables by, and JSON load_table reads.
    assert json.loads(found.data.tags["mlflow.loggedArtifacts"]) == [
        {"path": "top-3.json", "type": "table"}, {"path": "folds.json", "type": "table"}]
    table = client.load_table(found.info.experiment_id, "top-3.json", run_ids=[found.info.run_id])
    assert table.to_dict("records")[:2] == [{"item": "a", "score": 0.9}, {"item": "b", "score": 0.8}]
    assert table["item"].tolist() == ["a", "b", "c"] and table["score"].isna().tolist() == [False, False, True]
    listed = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"val-cm.json", "val-cm.png"} <= listed, listed
    png = client.download_artifacts(found.info.run_id, "val-cm.png", str(tmp_path / "back"))
    from matplotlib.image import imread

    assert imread(png).shape[:2] == (600, 800)  # the chart drawn at its default size
