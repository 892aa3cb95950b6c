"""XGBoost and LightGBM with their ``SagerunCallback``: a few hundred rows of scikit-learn's data,
read back as a user reads it (``sagerun show`` / ``export``), and inside a (moto) training job as
SageMaker keeps it (DescribeTrialComponent, and the points the metrics endpoint received)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from sklearn.datasets import load_diabetes

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")

import sagerun.sync  # noqa: E402
from sagerun.integrations import lightgbm as sagerun_lightgbm  # noqa: E402
from sagerun.integrations import xgboost as sagerun_xgboost  # noqa: E402
from test_load_run import experiment_config, seed_run, training_job  # noqa: E402
from tracked import local_session, read, runs  # noqa: E402

X, Y = load_diabetes(return_X_y=True)
TRAIN, VALID = slice(0, 300), slice(300, None)
FEATURES = [f"f{i}" for i in range(X.shape[1])]


def matrices() -> tuple[object, object]:
    return (xgboost.DMatrix(X[TRAIN], Y[TRAIN], feature_names=FEATURES),
            xgboost.DMatrix(X[VALID], Y[VALID], feature_names=FEATURES))


def test_xgboost_logs_each_round_its_parameters_and_the_feature_importance(tmp_path):
    callback = sagerun_xgboost.SagerunCallback(experiment_name="boost", run_name="xgb",
                                               session=local_session(tmp_path), register_model="diabetes-xgb")
    train, valid = matrices()
    xgboost.train({"max_depth": 2, "eta": 0.3, "eval_metric": "rmse"}, train, 30, evals=[(train, "train"),
                  (valid, "validation")], early_stopping_rounds=5, callbacks=[callback], verbose_eval=False)
    assert callback.run is None
    logged = read(tmp_path, "boost/xgb")
    assert logged.status == "Completed"
    steps, rmse = logged.series["validation-rmse"]
    assert steps == list(range(len(steps))) and logged.series["train-rmse"][0] == steps
    parameters = logged.parameters
    assert parameters["max_depth"] == 2 and parameters["learning_rate"] == pytest.approx(0.3)
    assert parameters["best_score"] == pytest.approx(min(rmse), rel=1e-6)
    assert rmse[parameters["best_iteration"]] == pytest.approx(min(rmse), rel=1e-6)
    assert {"feature_importance", "model:diabetes-xgb"} <= set(logged.outputs)
    table = _table(tmp_path, "boost/xgb", "feature_importance")
    assert set(table[0]) == {"feature", "weight", "gain", "cover"} and table[0]["feature"] in FEATURES


def test_xgboost_cv_logs_the_mean_and_deviation_over_folds(tmp_path):
    callback = sagerun_xgboost.SagerunCallback(experiment_name="boost", run_name="xgb-cv",
                                               session=local_session(tmp_path))
    xgboost.cv({"max_depth": 2}, matrices()[0], 5, nfold=3, callbacks=[callback], seed=0)
    series = read(tmp_path, "boost/xgb-cv").series
    assert sorted(series) == ["test-rmse-mean", "test-rmse-std", "train-rmse-mean", "train-rmse-std"]
    assert series["test-rmse-mean"][0] == [0, 1, 2, 3, 4]


def test_lightgbm_logs_each_iteration_and_ends_its_run_at_the_last(tmp_path):
    callback = sagerun_lightgbm.SagerunCallback(experiment_name="boost", run_name="lgb",
                                                session=local_session(tmp_path))
    train = lightgbm.Dataset(X[TRAIN], Y[TRAIN], feature_name=FEATURES)
    valid = lightgbm.Dataset(X[VALID], Y[VALID], reference=train)
    lightgbm.train({"objective": "regression", "metric": ["l2", "l1"], "verbose": -1, "num_leaves": 7}, train, 20,
                   valid_sets=[valid], valid_names=["valid"], callbacks=[callback])
    assert callback.run is None
    logged = read(tmp_path, "boost/lgb")
    assert logged.status == "Completed" and logged.series["valid-l2"][0] == list(range(20))
    assert sorted(logged.series) == ["valid-l1", "valid-l2"]
    assert logged.parameters["num_leaves"] == 7 and logged.parameters["objective"] == "regression"
    table = _table(tmp_path, "boost/lgb", "feature_importance")
    assert set(table[0]) == {"feature", "split", "gain"} and sum(row["split"] for row in table) > 0


def test_lightgbm_cut_short_by_early_stopping_ends_at_close(tmp_path):
    train = lightgbm.Dataset(X[TRAIN], Y[TRAIN])
    valid = lightgbm.Dataset(X[VALID], Y[VALID], reference=train)
    with sagerun_lightgbm.SagerunCallback(experiment_name="boost", run_name="lgb-early",
                                          session=local_session(tmp_path)) as callback:
        booster = lightgbm.train({"objective": "regression", "verbose": -1, "learning_rate": 0.5}, train, 500,
                                 valid_sets=[valid], callbacks=[callback, lightgbm.early_stopping(3, verbose=False)])
        assert callback.run is not None  # LightGBM does not say that the training ended
    logged = read(tmp_path, "boost/lgb-early")
    assert logged.status == "Completed" and len(logged.series["valid_0-l2"][0]) == booster.best_iteration + 3
    assert logged.parameters["best_iteration"] == booster.best_iteration


def test_lightgbm_cut_short_without_close_gets_its_end_at_exit(tmp_path):
    script = textwrap.dedent(f"""
        import lightgbm, sagerun
        from sklearn.datasets import load_diabetes
        from sagerun.integrations.lightgbm import SagerunCallback
        X, y = load_diabetes(return_X_y=True)
        train, valid = lightgbm.Dataset(X[:300], y[:300]), lightgbm.Dataset(X[300:], y[300:])
        callback = SagerunCallback(experiment_name="boost", run_name="early", register_model="lgb-early",
                                   session=sagerun.Session(backend="local", store={str(tmp_path)!r}))
        lightgbm.train({{"objective": "regression", "verbose": -1, "learning_rate": 0.5}}, train, 500,
                       valid_sets=[valid], callbacks=[callback, lightgbm.early_stopping(3, verbose=False)])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    logged = read(tmp_path, "boost/early")
    assert logged.status == "Completed" and logged.parameters["best_iteration"] > 0
    assert {"feature_importance", "model:lgb-early"} <= set(logged.outputs)


def test_lightgbm_cv_logs_the_mean_and_deviation_over_folds(tmp_path):
    callback = sagerun_lightgbm.SagerunCallback(experiment_name="boost", run_name="lgb-cv",
                                                session=local_session(tmp_path))
    lightgbm.cv({"objective": "regression", "verbose": -1}, lightgbm.Dataset(X, Y), 4, nfold=3, callbacks=[callback])
    logged = read(tmp_path, "boost/lgb-cv")
    assert logged.status == "Completed"
    assert logged.series["valid-l2-mean"][0] == [0, 1, 2, 3] and len(logged.series["valid-l2-stdv"][0]) == 4


def test_a_given_run_takes_both_and_stays_open(tmp_path):
    with sagerun.sync.Run("boost", "both", session=local_session(tmp_path)) as run:
        train, _ = matrices()
        xgboost.train({"max_depth": 2}, train, 3, evals=[(train, "train")], verbose_eval=False,
                      callbacks=[sagerun_xgboost.SagerunCallback(run=run)])
        lightgbm.train({"verbose": -1}, lightgbm.Dataset(X, Y), 3, valid_sets=[lightgbm.Dataset(X, Y)],
                       valid_names=["all"], callbacks=[sagerun_lightgbm.SagerunCallback(run=run)])
        run.log_metric("after", 1.0, step=0)
    assert {"train-rmse", "all-l2", "after"} <= set(read(tmp_path, "boost/both").series)
    assert [r["status"] for r in runs(tmp_path)] == ["Completed"]


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_a_training_that_raises_ends_its_run_failed(tmp_path, library):
    train = {"xgboost": "xgboost.train({}, xgboost.DMatrix(X, y), 10, evals=[(xgboost.DMatrix(X, y), 'train')], "
                        "callbacks=[callback, Broken()], verbose_eval=False)",
             "lightgbm": "lightgbm.train({'verbose': -1}, lightgbm.Dataset(X, y), 10, valid_sets=[lightgbm.Dataset(X, "
                         "y)], valid_names=['train'], callbacks=[callback, broken])"}[library]
    script = textwrap.dedent(f"""
        import {library}, sagerun
        from sklearn.datasets import load_diabetes
        from sagerun.integrations.{library} import SagerunCallback
        X, y = load_diabetes(return_X_y=True)

        class Broken(getattr(xgboost, "callback", None).TrainingCallback if "{library}" == "xgboost" else object):
            def after_iteration(self, model, epoch, evals_log):
                if epoch == 2:
                    raise MemoryError("out of memory")

        def broken(env):
            if env.iteration == 2:
                raise MemoryError("out of memory")
        broken.order = 40

        callback = SagerunCallback(experiment_name="boost", run_name="crash",
                                   session=sagerun.Session(backend="local", store={str(tmp_path)!r}))
        {train}
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "out of memory" in done.stderr
    logged = read(tmp_path, "boost/crash")
    assert logged.status == "Failed" and logged.shown["status_message"] == "MemoryError: out of memory"
    assert next(iter(logged.series.values()))[0] == [0, 1, 2]


def test_inside_a_training_job_the_jobs_run_gets_the_rounds(session, sagemaker, metrics_fake, monkeypatch, tmp_path):
    seed_run(sagemaker, "tuning", "xgb-trial")
    monkeypatch.setenv("TRAINING_JOB_ARN", training_job(sagemaker, "xgb-job", experiment_config("tuning", "xgb-trial")))
    monkeypatch.setenv("SAGERUN_PROCESSING_JOB_CONFIG", str(tmp_path / "none.json"))
    callback = sagerun_xgboost.SagerunCallback(session=session)  # no names: load_run() finds the job's run
    train, _ = matrices()
    xgboost.train({"max_depth": 3}, train, 8, evals=[(train, "train")], callbacks=[callback], verbose_eval=False)

    described = sagemaker.describe_trial_component(TrialComponentName="tuning-xgb-trial")
    assert described["Status"]["PrimaryStatus"] == "Completed"
    assert described["Parameters"]["max_depth"] == {"NumberValue": 3.0}
    received = sorted((p["step"], p["name"]) for p in metrics_fake.points if p["trial_component"] == "tuning-xgb-trial")
    assert received == [(step, "train-rmse") for step in range(8)]


def _table(store: object, ref: str, name: str) -> list[dict[str, object]]:
    from click.testing import CliRunner
    import orjson

    from sagerun.cli import cli

    result = CliRunner().invoke(cli, ["table", "--store", str(store), ref, name, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.stdout)
    columns = [column["name"] for column in shown["columns"]]
    return [dict(zip(columns, row)) for row in shown["rows"]]
