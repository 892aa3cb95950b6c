"""Integrations · XGBoost: ``xgboost.train(..., callbacks=[SagerunCallback()])``, or an estimator's ``callbacks``.

Each boosting round's evaluation goes at the round, named ``<data>-<metric>`` as XGBoost prints it
(``train-rmse``, ``validation-logloss``); ``xgboost.cv`` gives ``<data>-<metric>-mean`` and
``-std``. Parameters: the booster's training parameters as it resolved them, and at the end the
best iteration and score when early stopping kept them. The feature importance (weight, gain,
cover) is stored as the table ``feature_importance``.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import xgboost

from ._boosting import importance_rows, training_parameters
from ._core import RunOptions, Tracked, Tracker
from ._names import unfinished

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SagerunCallback"]

_IMPORTANCE = ("weight", "gain", "cover")


class SagerunCallback(Tracked, xgboost.callback.TrainingCallback):
    """Logs an XGBoost training to a sagerun run.

    Takes the keywords every integration takes (``RunOptions``: ``run``, ``experiment_name``,
    ``run_name``, ``session``, ``tags``, ``per_rank``, ``register_model``; ``log_checkpoints`` is
    refused: store a checkpoint with ``run.log_file`` where you save it).
    Without ``run`` or names it logs to ``load_run()``'s run, else to a new run of the experiment
    ``xgboost``, closed when the training ends. ``register_model`` saves the booster as
    ``model.json``.

    Raises:
        TypeError, ValueError: a keyword breaks its rule (named).
    """

    def __init__(self, **options: Unpack[RunOptions]) -> None:
        super().__init__()
        self.tracker = Tracker("xgboost", checkpoints=False, **options)
        self._training = False

    def before_training(self, model: Any) -> Any:
        self.tracker.safely(self._begin, model)
        return model

    def _begin(self, model: Any) -> None:
        if xgboost.collective.is_distributed():
            self.tracker.set_rank(xgboost.collective.get_rank())
        if self._training:  # the last training raised before its end
            self.tracker.end(unfinished("xgboost"))
        self._training = True
        if isinstance(model, xgboost.Booster):
            self.tracker.parameters(training_parameters(json.loads(model.save_config())))

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        self.tracker.safely(self._round, epoch, evals_log)
        return False  # never asks the training to stop

    def _round(self, epoch: int, evals_log: dict[str, Any]) -> None:
        values: dict[str, Any] = {}
        for data, metrics in evals_log.items():
            for metric, history in metrics.items():
                last = history[-1]
                if isinstance(last, tuple):  # xgboost.cv: (mean, std) over the folds
                    values[f"{data}-{metric}-mean"], values[f"{data}-{metric}-std"] = last
                else:
                    values[f"{data}-{metric}"] = last
        self.tracker.metrics(values, epoch)

    def after_training(self, model: Any) -> Any:
        self._training = False
        self.tracker.safely(self._finish, model)
        return model

    def _finish(self, model: Any) -> None:
        saver = None
        if isinstance(model, xgboost.Booster):
            attributes = model.attributes()
            best = {"best_iteration": int, "best_score": float}
            self.tracker.parameters({key: kind(attributes[key]) for key, kind in best.items() if key in attributes})
            scores = {kind: model.get_score(importance_type=kind) for kind in _IMPORTANCE}
            rows = importance_rows(scores)
            if rows:
                self.tracker.table("feature_importance", rows)
            saver = lambda folder: model.save_model(os.path.join(folder, "model.json"))  # noqa: E731
        self.tracker.end(None, saver)
