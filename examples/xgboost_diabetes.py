"""An XGBoost training that logs to a sagerun run through ``SagerunCallback``: a regressor on
scikit-learn's diabetes data, each round's train and validation RMSE, the feature importance as a
table, and the booster registered as a model.

    python examples/xgboost_diabetes.py
    sagerun show diabetes/xgb-depth3
    sagerun table diabetes/xgb-depth3 feature_importance

Needs xgboost (``pip install -e ".[test]"`` brings it). Logs to the embedded local
store unless ``SAGERUN_BACKEND=sagemaker``.
"""

import os

import xgboost
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

from sagerun import Session
from sagerun.integrations.xgboost import SagerunCallback

features, target = load_diabetes(return_X_y=True, as_frame=True)
x_train, x_val, y_train, y_val = train_test_split(features, target, test_size=0.25, random_state=0)
train, validation = xgboost.DMatrix(x_train, y_train), xgboost.DMatrix(x_val, y_val)

callback = SagerunCallback(experiment_name="diabetes", run_name="xgb-depth3", register_model="diabetes-xgb",
                           session=Session(backend=os.environ.get("SAGERUN_BACKEND", "local")))
params = {"objective": "reg:squarederror", "eta": 0.1, "max_depth": 3, "subsample": 0.8, "seed": 0}
# train-rmse and validation-rmse at each round; the resolved parameters when the training begins;
# at its end the feature importance, the booster registered as diabetes-xgb, and the run closed.
booster = xgboost.train(params, train, num_boost_round=60, evals=[(train, "train"), (validation, "validation")],
                        callbacks=[callback], verbose_eval=False)

rmse = float(booster.eval(validation).split(":")[1])
print(f"diabetes/xgb-depth3: {callback.stats.points} points logged, final validation-rmse {rmse:.2f}")
