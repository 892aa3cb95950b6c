"""A plain script (no async): train a classifier and log it with the sync facade, ``sagerun.sync``.

    python examples/sync_script.py

Logs to the embedded local store unless ``SAGERUN_BACKEND=sagemaker``. Then try
``sagerun show iris/sgd-classifier`` or
``sagerun chart iris/sgd-classifier val-confusion --out confusion.png``.
"""

import os

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sagerun.sync import Run, Session

features, labels = load_iris(return_X_y=True)
features = StandardScaler().fit_transform(features)
x_train, x_val, y_train, y_val = train_test_split(features, labels, test_size=0.3, random_state=0)
model = SGDClassifier(loss="log_loss", alpha=1e-3, random_state=0)

session = Session(backend=os.environ.get("SAGERUN_BACKEND", "local"))
with Run(experiment_name="iris", run_name="sgd-classifier", session=session) as run:
    run.log_parameters({"model": "SGDClassifier", "loss": "log_loss", "alpha": 1e-3, "epochs": 50})

    for epoch in range(50):
        model.partial_fit(x_train, y_train, classes=np.unique(labels))
        # Queues the point and returns at once: no network I/O on this thread.
        run.log_metric("train:accuracy", model.score(x_train, y_train), step=epoch)
        run.log_metric("val:accuracy", model.score(x_val, y_val), step=epoch)

    # A whole series at once, from numpy arrays.
    steps = np.arange(1_000)
    run.log_metrics({"schedule:lr": 0.1 * np.exp(-steps / 200)}, step=steps)

    uri = run.log_confusion_matrix(y_val, model.predict(x_val), title="val-confusion")
    run.flush()  # wait until every point so far is delivered
    print(f"val accuracy {model.score(x_val, y_val):.3f}; {run.ingest_stats.delivered} points delivered")
    print(f"confusion matrix: {uri}")
# Leaving the block delivered the rest and marked the run Completed.
