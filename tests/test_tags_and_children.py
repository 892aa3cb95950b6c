"""Tags and child runs on each backend: what SageMaker, MLflow's client and the local store keep."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from mlflow.tracking import MlflowClient

import sagerun
import sagerun.sync
from older_store import older_store


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def local_session(tmp_path):
    return sagerun.Session(backend="local", store=str(tmp_path / "store"), linger=0.001)


@pytest.mark.parametrize("tags, message", [
    ({"aws:team": "x"}, "starts with 'aws:'"),
    ({"k" * 129: "x"}, "1 to 128 characters"),
    ({"team": "v" * 257}, "at most 256 characters"),
    ({"team": "a;b"}, "may hold only letters"),
    ({"team": ["a"]}, "value must be a str"),
    ([{"Key": "team"}], "item 0 is"),
    ("team=a", "must be a dict"),
])
def test_bad_tags_are_refused_at_the_call_naming_the_rule(local_session, tags, message):
    with pytest.raises((TypeError, ValueError), match=message):
        sagerun.sync.Run("exp", "run", tags=tags, session=local_session)
    with sagerun.sync.Run("exp", "run", session=local_session) as run:
        run.set_tag("kept", "yes")
        with pytest.raises((TypeError, ValueError), match=message):
            run.set_tags(tags)
        assert run.tags == {"kept": "yes"}  # nothing already set is lost
    with pytest.raises(ValueError, match="at most 49 tags"):
        with sagerun.sync.Run("exp", "many", session=local_session) as run:
            run.set_tags({f"k{i}": "v" for i in range(50)})


def test_tags_and_children_on_sagemaker_are_what_aws_keeps(session, sagemaker):
    experiment = unique("exp")
    with sagerun.sync.Run(experiment, "sweep", tags={"team": "search", "owner": "ana"}, session=session) as parent:
        parent.set_tag("stage", 1)
        for fold in ("fold-1", "fold-2"):
            try:
                with parent.child_run(fold, tags=[{"Key": "fold", "Value": fold}]) as child:
                    child.log_metric("auc", 0.7, step=0)
                    if fold == "fold-2":
                        raise RuntimeError("diverged")
            except RuntimeError:
                pass
    arn = sagemaker.describe_trial_component(TrialComponentName=parent.trial_component_name)["TrialComponentArn"]
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    assert {"team": "search", "owner": "ana", "stage": "1"}.items() <= tags.items()
    child_name = f"{parent.trial_component_name}-fold-2"
    described = sagemaker.describe_trial_component(TrialComponentName=child_name)
    assert described["Status"]["PrimaryStatus"] == "Failed"
    assert sagemaker.describe_trial_component(
        TrialComponentName=parent.trial_component_name)["Status"]["PrimaryStatus"] == "Completed"
    child_tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=described["TrialComponentArn"])["Tags"]}
    assert child_tags["sagerun:parent-run"] == parent.trial_component_name and child_tags["fold"] == "fold-2"
    names = [r.run_name for r in sagerun.sync.list_runs(experiment, session=session)]
    assert names == ["sweep"]
    every = sagerun.sync.list_runs(experiment, session=session, include_children=True, sort_by="Name",
                                   sort_order="Ascending")
    assert [(r.run_name, r.parent) for r in every] == [
        ("sweep", None), ("sweep-fold-1", parent.trial_component_name), ("sweep-fold-2", parent.trial_component_name)]
    tagged = sagerun.sync.list_runs(experiment, session=session, include_children=True, tags={"fold": "fold-1"})
    assert [r.run_name for r in tagged] == ["sweep-fold-1"]


def test_tags_and_children_in_mlflow_are_what_its_client_reads(mlflow_server, tmp_path):
    session = sagerun.Session(backend="mlflow", tracking_uri=mlflow_server.url, store=str(tmp_path / "store"),
                              retry_initial=0.01, retry_deadline=5.0, close_timeout=10.0, linger=0.005)
    experiment = unique("exp")
    with sagerun.sync.Run(experiment, "sweep", tags={"team": "search"}, session=session) as parent:
        parent.set_tags({"stage": "2"})
        with parent.child_run("trial-1") as child:
            child.set_tag("lr", 0.1)
    client = MlflowClient(tracking_uri=mlflow_server.url)
    got_parent = client.get_run(parent.trial_component_name)
    got_child = client.get_run(child.trial_component_name)
    assert {"team": "search", "stage": "2"}.items() <= got_parent.data.tags.items()
    assert got_child.data.tags["mlflow.parentRunId"] == parent.trial_component_name
    assert got_child.data.tags["lr"] == "0.1" and got_child.info.run_name == "sweep-trial-1"
    assert [r.run_name for r in sagerun.sync.list_runs(experiment, session=session)] == ["sweep"]
    children = sagerun.sync.list_runs(experiment, session=session, include_children=True, tags={"lr": "0.1"})
    assert [r.parent for r in children] == [parent.trial_component_name]


def test_the_local_store_keeps_the_tree_and_the_cli_shows_it(local_session, tmp_path):
    with sagerun.sync.Run("cv", "xgb", tags={"data": "v3"}, session=local_session) as parent:
        for fold in range(2):
            with parent.child_run(f"fold-{fold}") as child:
                child.log_metric("auc", 0.8 + fold / 100, step=0)
    with sagerun.sync.Run("cv", "xgb", tags={"data": "v4"}, session=local_session) as again:
        assert again.tags == {"data": "v4"}  # resumed: the value set last wins
    listed = sagerun.sync.list_runs("cv", session=local_session, include_children=True, sort_by="Name",
                                    sort_order="Ascending")
    assert [(r.run_name, r.parent) for r in listed] == [
        ("xgb", None), ("xgb-fold-0", "cv-xgb"), ("xgb-fold-1", "cv-xgb")]
    store = local_session.store_path
    done = subprocess.run([sys.executable, "-m", "sagerun", "runs", "--tree", "--json", "--store", store],
                          capture_output=True, text=True, check=True)
    assert [(r["run"], r["depth"]) for r in json.loads(done.stdout)] == [  # newest first, as runs lists
        ("xgb", 0), ("xgb-fold-1", 1), ("xgb-fold-0", 1)]
    text = subprocess.run([sys.executable, "-m", "sagerun", "runs", "--tree", "--store", store],
                          capture_output=True, text=True, check=True).stdout
    assert "└ xgb-fold-0" in text
    shown = json.loads(subprocess.run([sys.executable, "-m", "sagerun", "show", "cv/xgb-fold-1", "--json",
                                       "--store", store], capture_output=True, text=True, check=True).stdout)
    assert shown["parent"] == "cv-xgb" and shown["metric_count"] == 1
    shown = json.loads(subprocess.run([sys.executable, "-m", "sagerun", "show", "cv/xgb", "--json", "--store", store],
                                      capture_output=True, text=True, check=True).stdout)
    assert shown["tags"] == {"data": "v4"} and shown["children"] == ["cv/xgb-fold-0", "cv/xgb-fold-1"]


def test_a_store_of_the_version_before_gains_the_parent_column(tmp_path):
    session = older_store(tmp_path / "old", "ALTER TABLE runs DROP COLUMN parent", 2, linger=0.001)
    with sagerun.sync.Run("exp", "after", session=session) as run:
        with run.child_run("c"):
            pass
    listed = sagerun.sync.list_runs("exp", session=session, include_children=True, sort_by="Name",
                                    sort_order="Ascending")
    assert [(r.run_name, r.parent) for r in listed] == [("after", None), ("after-c", "exp-after"), ("before", None)]
