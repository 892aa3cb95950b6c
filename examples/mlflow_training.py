"""Log a training loop to an MLflow tracking server: any server, or SageMaker's managed MLflow.

    export MLFLOW_TRACKING_URI=http://127.0.0.1:5000    # or the ARN of a SageMaker tracking server:
    # export MLFLOW_TRACKING_URI=arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/my-server
    python examples/mlflow_training.py

The same loop as with ``mlflow.log_metric``, but each call only queues the point: sagerun sends
them in ``log-batch`` requests of up to 1,000, retries what fails, and keeps in the local spool
what the server cannot take, for ``SAGERUN_BACKEND=mlflow sagerun sync`` to send later.
"""

import os

import numpy as np

from sagerun.sync import Run, Session

session = Session(backend="mlflow", tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
rng = np.random.default_rng(0)
features = rng.normal(size=(2_000, 5))
target = features @ np.array([1.5, -2.0, 0.5, 0.0, 3.0]) + rng.normal(scale=0.1, size=2_000)
weights = np.zeros(5)

with Run(experiment_name="linear-regression", run_name="mlflow-sgd", session=session) as run:
    run.log_parameters({"lr": 0.05, "batch": 20, "epochs": 5})
    step = 0
    for epoch in range(5):
        for start in range(0, len(features), 20):
            x, y = features[start:start + 20], target[start:start + 20]
            error = x @ weights - y
            weights -= 0.05 * x.T @ error / len(y)
            run.log_metric("train_mse", float(np.mean(error**2)), step=step)
            step += 1
        run.log_metric("epoch_mse", float(np.mean((features @ weights - target) ** 2)), step=epoch)
    run.flush()
    print(f"run {run.trial_component_name}: {run.ingest_stats.delivered} points delivered")
