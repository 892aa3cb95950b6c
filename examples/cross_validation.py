"""Cross-validation under one parent run: a child run per fold, the mean on the parent, and the
model refitted on all the data registered from the parent.

    python examples/cross_validation.py
    sagerun runs digits --tree
    sagerun models

Logs to the embedded local store unless ``SAGERUN_BACKEND`` says otherwise (``sagemaker``,
``mlflow``). ``SAGERUN_SYSTEM_METRICS=1`` adds CPU and memory samples (``pip install 'sagerun[system]'``).
"""

import os
import pickle
import tempfile

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from sagerun.sync import Run, Session

features, labels = load_digits(return_X_y=True)
features = features / 16.0
folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=0)
settings = {"model": "LogisticRegression", "C": 0.5, "folds": folds.get_n_splits()}

with Run(experiment_name="digits", run_name="logreg-cv", session=Session.from_env(), tags={"purpose": "cv"}) as parent:
    parent.log_parameters(settings)
    scores = []
    for fold, (train, val) in enumerate(folds.split(features, labels)):
        # A child of the parent, named logreg-cv-fold-<n>; list_runs leaves it out unless asked.
        with parent.child_run(f"fold-{fold}") as child:
            child.log_parameters({**settings, "fold": fold})
            model = LogisticRegression(C=settings["C"], max_iter=200).fit(features[train], labels[train])
            score = model.score(features[val], labels[val])
            child.log_metric("val:accuracy", score)
            child.log_row("per-fold", fold=fold, train_size=len(train), accuracy=score)
            scores.append(score)
        parent.log_row("folds", fold=fold, accuracy=score)
    parent.log_metric("cv:accuracy-mean", float(np.mean(scores)))
    parent.log_metric("cv:accuracy-std", float(np.std(scores)))

    final = LogisticRegression(C=settings["C"], max_iter=200).fit(features, labels)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.pkl")
        with open(path, "wb") as file:
            pickle.dump(final, file)
        version = parent.register_model("digits-logreg", path, description=f"cv accuracy {np.mean(scores):.3f}")
    print(f"{len(scores)} folds, mean accuracy {np.mean(scores):.3f}; registered {version.id}")
