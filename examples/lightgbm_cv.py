"""LightGBM cross-validation that logs to a sagerun run through ``SagerunCallback``: ``lightgbm.cv``
with early stopping on scikit-learn's breast cancer data, the mean and deviation over the folds at
each iteration.

    python examples/lightgbm_cv.py
    sagerun show breast-cancer/lgbm-cv

A LightGBM callback is not told when a training ends: the ``with`` block ends the run (early
stopping can end the training before its last iteration). Needs lightgbm (``pip install -e ".[test]"``
brings it). Logs to the embedded local store unless ``SAGERUN_BACKEND=sagemaker``.
"""

import os

import lightgbm
from sklearn.datasets import load_breast_cancer

from sagerun import Session
from sagerun.integrations.lightgbm import SagerunCallback

features, labels = load_breast_cancer(return_X_y=True, as_frame=True)
data = lightgbm.Dataset(features, labels)
params = {"objective": "binary", "metric": ["binary_logloss", "auc"], "learning_rate": 0.1, "num_leaves": 7,
          "seed": 0, "deterministic": True, "num_threads": 1, "force_col_wise": True, "verbosity": -1}

with SagerunCallback(experiment_name="breast-cancer", run_name="lgbm-cv",
                     session=Session(backend=os.environ.get("SAGERUN_BACKEND", "local"))) as callback:
    # valid-binary_logloss-mean, -stdv, valid-auc-mean, -stdv at each iteration; params as parameters
    results = lightgbm.cv(params, data, num_boost_round=300, nfold=4, stratified=True, seed=0,
                          callbacks=[callback, lightgbm.early_stopping(20, verbose=False)])
# Early stopping ended cv() 20 iterations after the best one; leaving the block closed the run Completed.

losses = results["valid binary_logloss-mean"]
print(f"breast-cancer/lgbm-cv: {callback.stats.points} points logged, "
      f"best iteration {len(losses)}, final loss {losses[-1]:.4f}")
