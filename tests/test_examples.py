"""Every script in examples/ runs as-is against the local store, as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Each example, the run it logs, the metrics it must have logged, and a line of its output.
CASES = {
    "async_training_loop.py": ("linear-regression/async-sgd", {"train:mse": 2560, "epoch:mse": 20}, "2600 delivered"),
    "sync_script.py": ("iris/sgd-classifier", {"val:accuracy": 50, "schedule:lr": 1000}, "1100 points delivered"),
    "sagemaker_job_entry.py": ("churn/local-try", {"train:loss": 10}, "churn/local-try: final loss"),
    "recommender_top_n.py": ("recommender/als-top5", {"train:rmse": 10}, "8 of 1,000 rows"),
    "cross_validation.py": ("digits/logreg-cv", {"cv:accuracy-mean": 1}, "4 folds, mean accuracy"),
    "multiprocess_ranks.py": ("ddp-demo/four-ranks", {f"rank{r}:loss": 500 for r in range(4)}, "4 ranks logged 2004"),
    # sagerun.integrations, each with its framework (the [test] extra brings them)
    "hf_trainer.py": ("hf-regression/two-params", {"train/loss": 40, "eval/loss": 2},
                      "hf-regression/two-params: 172 points logged"),
    "lightning_boring.py": ("boring/linear-32", {"train/loss": 32, "val/loss": 4, "epoch": 36},
                            "boring/linear-32: 72 points logged"),
    "keras_jax.py": ("keras-jax/dense-16", {"train/epoch/loss": 10, "eval/epoch/loss": 10, "train/batch/loss": 30,
                                            "test/loss": 1}, "keras-jax/dense-16: 102 points logged"),
    "xgboost_diabetes.py": ("diabetes/xgb-depth3", {"train-rmse": 60, "validation-rmse": 60},
                            "diabetes/xgb-depth3: 120 points logged"),
    "lightgbm_cv.py": ("breast-cancer/lgbm-cv", {"valid-binary_logloss-mean": 75, "valid-auc-stdv": 75},
                       "breast-cancer/lgbm-cv: 300 points logged, best iteration 55"),
}

#: examples that import a framework (transformers takes seconds to import): a longer timeout
SLOW = {"hf_trainer.py", "lightning_boring.py", "keras_jax.py", "xgboost_diabetes.py", "lightgbm_cv.py"}


#: examples for another backend, tested with it (tests/test_mlflow_backend.py)
ELSEWHERE = {"mlflow_training.py"}


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted({*CASES, *ELSEWHERE})


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SAGERUN_", "SM_")) and k not in ("TRAINING_JOB_ARN", "TRANSFORM_JOB_ARN")}
    env["SAGERUN_HOME"] = str(home)
    return env


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs_and_logs_its_run(script, tmp_path):
    ref, counts, expected_output = CASES[script]
    env = _env(tmp_path / "store")
    done = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180 if script in SLOW else 60)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    assert expected_output in done.stdout, done.stdout
    assert "Traceback" not in done.stderr, done.stderr

    shown = subprocess.run([sys.executable, "-m", "sagerun", "show", ref, "--json"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    assert run["status"] == "Completed"
    logged = {metric["name"]: metric["count"] for metric in run["metrics"]}
    for name, count in counts.items():
        assert logged.get(name) == count, (name, logged)
