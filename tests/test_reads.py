"""Reading runs back in Python: ``search_runs``, ``metric_histories``, ``run.metric_history`` and
``ExperimentAnalytics``, the same three runs logged to the local store, a real MLflow server and
SageMaker (moto, with BatchGetMetrics answered by the recording fake)."""

from __future__ import annotations

import dataclasses
import math

import boto3
import botocore.config
import numpy as np
import pytest

import sagerun
import sagerun.sync
from search_pages import SearchPages
from test_load_run import seed_run

LEARNING_RATES = {"a": 0.1, "b": 0.01, "c": 0.001}
LOSS = {name: np.linspace(1.0, lr, 10) for name, lr in LEARNING_RATES.items()}


def log_three(session: sagerun.Session, experiment: str = "reads") -> None:
    for name, lr in LEARNING_RATES.items():
        with sagerun.sync.Run(experiment, name, session=session, tags={"kind": "sweep"}) as run:
            run.log_parameters({"lr": lr, "optimizer": "adam"})
            run.log_metrics({"loss": LOSS[name]}, step=np.arange(10))
    with sagerun.sync.Run(experiment, "broken", session=session) as run:
        run.set_tag("kind", "smoke")
        run.log_parameter("lr", 1.0)
        run.log_metric("loss", 9.0, step=0)


@pytest.fixture(params=["local", "mlflow", "sagemaker"])
def backend(request, tmp_path, moto_url):
    """A session of each backend; SageMaker's metrics go to moto here, which keeps their summaries."""
    if request.param == "local":
        return sagerun.Session(backend="local", store=str(tmp_path), linger=0.005)
    if request.param == "mlflow":
        server = request.getfixturevalue("mlflow_server")
        return sagerun.Session(backend="mlflow", tracking_uri=server.url, linger=0.005, sender="inline")
    return sagerun.Session(backend="sagemaker", region="us-east-1", endpoint_url=moto_url, linger=0.005,
                           retry_initial=0.01, retry_max_backoff=0.05, retry_deadline=5.0, sender="inline")


def _experiment(request) -> str:
    # The MLflow server lives for the whole session: each test has an experiment of its own.
    return "reads-" + request.node.name.split("[")[0][-20:].replace("_", "-").strip("-") + "-" + request.node.callspec.id


def test_the_same_runs_give_the_same_frame_on_every_backend(backend, request):
    experiment = _experiment(request)
    log_three(backend, experiment)
    frame = sagerun.sync.search_runs(experiment, tags={"kind": "sweep"}, order_by="param.lr ASC", stats="all",
                                     session=backend)
    assert list(frame["run"]) == ["c", "b", "a"] and set(frame["status"]) == {"Completed"}
    assert {"experiment", "run", "run_group", "status", "start_time", "end_time", "parent", "tag.kind",
            "param.lr", "param.optimizer", "metric.loss.last", "metric.loss.min", "metric.loss.max",
            "metric.loss.avg", "metric.loss.count"} <= set(frame.columns)
    for row in frame.to_dict("records"):
        loss = LOSS[row["run"]]
        assert row["param.lr"] == LEARNING_RATES[row["run"]] and row["param.optimizer"] == "adam"
        assert row["tag.kind"] == "sweep" and row["experiment"] == experiment
        assert row["metric.loss.count"] == 10
        for stat, value in (("last", loss[-1]), ("min", loss.min()), ("max", loss.max()), ("avg", loss.mean())):
            assert math.isclose(row[f"metric.loss.{stat}"], value, rel_tol=1e-9), (stat, row)


def test_filters_order_and_a_cut_apply_on_every_backend(backend, request):
    experiment = _experiment(request)
    log_three(backend, experiment)
    best = sagerun.sync.search_runs(experiment, order_by=["metric.loss.last ASC"], max_results=2, session=backend,
                                    as_frame=False)
    assert [row["run"] for row in best] == ["c", "b"]
    assert [row["run"] for row in sagerun.sync.search_runs(experiment, parameters={"lr": 0.01}, session=backend,
                                                            as_frame=False)] == ["b"]
    assert [row["run"] for row in sagerun.sync.search_runs(experiment, tags={"kind": "smoke"}, session=backend,
                                                            as_frame=False)] == ["broken"]
    assert sagerun.sync.search_runs(experiment, status="Failed", session=backend, as_frame=False) == []


def test_metric_histories_come_back_point_by_point(backend, request, metrics_fake):
    experiment = _experiment(request)
    if backend.backend == "sagemaker":  # moto answers BatchGetMetrics 404: the recording fake answers it
        backend = dataclasses.replace(backend, metrics_endpoint_url=metrics_fake.url)
    log_three(backend, experiment)
    frame = sagerun.sync.metric_histories([f"{experiment}/a", f"{experiment}/c"], "loss", session=backend)
    assert list(frame.columns) == ["experiment", "run", "metric", "step", "timestamp", "value"]
    for name in ("a", "c"):
        part = frame[frame["run"] == name]
        assert list(part["step"]) == list(range(10)) and np.allclose(part["value"], LOSS[name])
    with sagerun.sync.Run(experiment, "a", session=backend) as run:
        history = run.metric_history("loss", as_frame=False)
    assert list(history.steps) == list(range(10)) and np.allclose(history.values, LOSS["a"])


def test_experiment_analytics_has_the_sdks_columns(tmp_path):
    session = sagerun.Session(backend="local", store=str(tmp_path))
    log_three(session)
    frame = sagerun.sync.ExperimentAnalytics("reads", session=session, sort_by="metrics.loss.Last",
                                             sort_order="Descending").dataframe()
    assert list(frame["DisplayName"]) == ["broken", "a", "b", "c"]
    assert {"TrialComponentName", "DisplayName", "lr", "optimizer", "loss - Min", "loss - Max", "loss - Avg",
            "loss - StdDev", "loss - Last", "loss - Count", "Trials", "Experiments"} <= set(frame.columns)
    assert frame.iloc[1]["TrialComponentName"] == "reads-a" and frame.iloc[1]["Experiments"] == ["reads"]
    assert frame.iloc[1]["Trials"] == ["Default-Run-Group-reads"]


async def test_the_async_api_reads_the_same(tmp_path):
    session = sagerun.Session(backend="local", store=str(tmp_path))
    log_three(session)
    rows = await sagerun.search_runs("reads", session=session, as_frame=False, include_children=True)
    assert sorted(row["run"] for row in rows) == ["a", "b", "broken", "c"]
    found = await sagerun.metric_histories("reads/b", session=session, as_frame=False)
    assert np.allclose(found[("reads/b", "loss")].values, LOSS["b"])


@pytest.mark.parametrize("kwargs, words", [
    ({"order_by": "loss"}, "order_by term 'loss' must name"),
    ({"order_by": "metric.loss.median"}, "the stat one of last, min, max, avg, count"),
    ({"status": "Done"}, "status must be one of"),
    ({"max_results": 0}, "max_results must be a positive int"),
    ({"parameters": {"lr": [1]}}, "parameters\\['lr'\\] must be a str, int or float"),
    ({"stats": "some"}, "stats must be 'summary' or 'all'"),
])
def test_bad_arguments_are_clear_errors(kwargs, words, tmp_path):
    with pytest.raises((TypeError, ValueError), match=words):
        sagerun.sync.search_runs("reads", session=sagerun.Session(backend="local", store=str(tmp_path)), **kwargs)


def test_a_throttled_and_paged_search_of_a_thousand_runs_returns_every_run(moto_url):
    client = boto3.client("sagemaker", endpoint_url=moto_url, region_name="us-east-1",
                          config=botocore.config.Config(retries={"max_attempts": 1}))
    seed_run(client, "big", "run-0000", lr=0)
    for index in range(1, 1000):  # as seed_run leaves each, without looking the experiment up again
        name = f"big-run-{index:04d}"
        arn = client.create_trial_component(TrialComponentName=name)["TrialComponentArn"]
        client.add_tags(ResourceArn=arn, Tags=[{"Key": "sagemaker:trial-component-source", "Value": "run"}])
        client.associate_trial_component(TrialComponentName=name, TrialName="Default-Run-Group-big")
        client.update_trial_component(TrialComponentName=name, Parameters={"lr": {"NumberValue": index}})
    with SearchPages(moto_url, throttle_every=3) as proxy:
        session = sagerun.Session(backend="sagemaker", region="us-east-1", endpoint_url=moto_url,
                                  sagemaker_endpoint_url=proxy.url, retry_initial=0.01, retry_max_backoff=0.05)
        frame = sagerun.sync.search_runs("big", order_by="param.lr DESC", session=session)
    assert len(frame) == 1000 and list(frame["run"][:2]) == ["run-0999", "run-0998"]
    assert proxy.searches >= 10 + proxy.throttled and proxy.throttled >= 3  # 10 pages, each throttled one sent again


def test_compare_and_export_read_any_backend(backend, request, metrics_fake, monkeypatch):
    from click.testing import CliRunner
    import orjson

    from sagerun.cli import cli

    experiment = _experiment(request)
    log_three(backend, experiment)  # SageMaker: metrics to moto, which keeps the summaries compare shows
    if backend.backend == "sagemaker":  # and to the fake, which answers BatchGetMetrics for export
        backend = dataclasses.replace(backend, metrics_endpoint_url=metrics_fake.url)
        with sagerun.sync.Run(experiment, "b", session=backend) as run:
            run.log_metrics({"loss": LOSS["b"]}, step=np.arange(10))
    for field in ("backend", "tracking_uri", "store", "region", "endpoint_url", "metrics_endpoint_url"):
        value = getattr(backend, field)
        if value is not None:  # what a user of the command line sets
            monkeypatch.setenv(f"SAGERUN_{field.upper()}", str(value))
    runner = CliRunner()
    compared = runner.invoke(cli, ["compare", "--source", backend.backend, f"{experiment}/a", f"{experiment}/c",
                                   "--json"], catch_exceptions=False)
    assert compared.exit_code == 0, compared.output
    runs = orjson.loads(compared.stdout)["runs"]
    assert [r["parameters"]["lr"] for r in runs] == [0.1, 0.001]
    assert [r["metrics"]["loss"] for r in runs] == pytest.approx([LOSS["a"][-1], LOSS["c"][-1]])
    whole = runner.invoke(cli, ["compare", "--source", backend.backend, "--experiment", experiment, "--json"],
                          catch_exceptions=False)
    assert sorted(r["run"] for r in orjson.loads(whole.stdout)["runs"]) == ["a", "b", "broken", "c"]
    listed = runner.invoke(cli, ["runs", "--source", backend.backend, experiment, "--json"], catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    assert sorted(r["run"] for r in orjson.loads(listed.stdout)) == ["a", "b", "broken", "c"]
    shown = runner.invoke(cli, ["show", "--source", backend.backend, f"{experiment}/c", "--json"],
                          catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    shown_run = orjson.loads(shown.stdout)
    assert shown_run["parameters"]["lr"] == 0.001 and shown_run["tags"]["kind"] == "sweep"
    assert [m["name"] for m in shown_run["metrics"]] == ["loss"]
    exported = runner.invoke(cli, ["export", "--source", backend.backend, f"{experiment}/b", "--json"],
                             catch_exceptions=False)
    assert exported.exit_code == 0, exported.output
    (series,) = orjson.loads(exported.stdout)["metrics"]
    assert series["name"] == "loss" and series["steps"] == list(range(10))
    assert series["values"] == pytest.approx(list(LOSS["b"]))
