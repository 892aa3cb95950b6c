"""Integrations · LightGBM: ``lightgbm.train(..., callbacks=[SagerunCallback()])``, and ``lightgbm.cv``.

Each iteration's evaluation goes at the iteration, named ``<data>-<metric>`` (``valid-l2``);
``cv()`` gives ``<data>-<metric>-mean`` and ``-stdv``, as its results are named. Parameters: the
training's ``params``. The feature importance (split, gain) is stored as the table
``feature_importance``.

A LightGBM callback is not told that the training ended: the run ends at the last iteration, or
when early stopping cut the training short, at ``close()`` (or the end of ``with callback:``), at
the next training's first iteration, or at interpreter exit, whichever comes first; each time
with the best iteration and score, the importance table and the model.
"""

from __future__ import annotations

import atexit
import os
import weakref
from typing import TYPE_CHECKING, Any

import lightgbm

from .._sync import _portal
from ._boosting import importance_rows
from ._core import RunOptions, Tracked, Tracker

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SagerunCallback"]


class SagerunCallback(Tracked):
    """Logs a LightGBM training to a sagerun run; a callable, as LightGBM's callbacks are.

    Takes the keywords every integration takes (``RunOptions``: ``run``, ``experiment_name``,
    ``run_name``, ``session``, ``tags``, ``per_rank``, ``register_model``; ``log_checkpoints`` is
    refused: store a checkpoint with ``run.log_file`` where you save it).
    Without ``run`` or names it logs to ``load_run()``'s run, else to a new run of the experiment
    ``lightgbm``. ``register_model`` saves the booster as ``model.txt``.

    Raises:
        TypeError, ValueError: a keyword breaks its rule (named).
    """

    order = 25
    """After LightGBM's record_evaluation (20), before its early_stopping (30), which ends a training
    by raising: the last iteration is logged before that."""
    before_iteration = False

    def __init__(self, **options: Unpack[RunOptions]) -> None:
        self.tracker = Tracker("lightgbm", checkpoints=False, **options)
        self._model: Any = None
        self._exit_armed = False

    def __call__(self, env: Any) -> None:
        self.tracker.safely(self._iteration, env)

    def _iteration(self, env: Any) -> None:
        if env.iteration == env.begin_iteration:
            if self._model is not None:  # the last training ended early, without telling
                self._finish()
            self.tracker.parameters(dict(env.params))
            if not self._exit_armed:
                # Armed after the engine started (its own exit hook closes the runs left open), so
                # this runs first: a training early stopping cut short still gets its end.
                self._exit_armed = True
                atexit.register(_finish_at_exit, weakref.ref(self))
        self._model = env.model
        values: dict[str, Any] = {}
        for result in env.evaluation_result_list:
            data, metric, value = result[0], result[1], result[2]
            if len(result) > 4 and result[4] is not None:  # cv(): the mean and deviation over the folds
                values[f"{data}-{metric}-mean"], values[f"{data}-{metric}-stdv"] = value, result[4]
            else:
                values[f"{data}-{metric}"] = value
        self.tracker.metrics(values, env.iteration)
        if env.iteration + 1 >= env.end_iteration:
            self._finish()

    def _finish(self, exc: BaseException | None = None) -> None:
        model, self._model = self._model, None
        saver = None
        if isinstance(model, lightgbm.Booster):
            if model.best_iteration > 0:
                best = {f"{data}-{metric}": value for data, scores in model.best_score.items()
                        for metric, value in scores.items()}
                self.tracker.parameters({"best_iteration": model.best_iteration, "best_score": best})
            names = model.feature_name()
            scores = {kind: dict(zip(names, model.feature_importance(kind).tolist())) for kind in ("split", "gain")}
            rows = importance_rows(scores)
            if rows:
                self.tracker.table("feature_importance", rows)
            saver = lambda folder: model.save_model(os.path.join(folder, "model.txt"))  # noqa: E731
        self.tracker.end(exc, saver)

    def close(self) -> None:
        """End the run now (if this callback opened it): after a training early stopping ended."""
        if self._model is not None or self.tracker.active_run is not None:
            self.tracker.safely(self._finish)

    def __enter__(self) -> SagerunCallback:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self.tracker.safely(self._finish, exc)


def _finish_at_exit(callback: weakref.ref[SagerunCallback]) -> None:
    alive = callback()
    if alive is not None and alive._model is not None:
        alive.tracker.safely(alive._finish, _portal.dying_of())
