"""Integrations · the Lightning ``Logger``'s members, for ``lightning.pytorch`` and ``pytorch_lightning`` alike.

The two packages have a ``Logger`` base each; ``lightning.py`` and ``pytorch_lightning.py`` put this
mixin on theirs. Metrics go at the step Lightning passes, under the names the module logged (with
``prefix``). ``save()`` costs nothing: ``log_metrics`` only queues, and the run's sender sends.
``finalize`` ends the run Completed, or Failed with the exception Lightning is handling; a later
``validate()``, ``test()`` or ``predict()`` logs to the same run again.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import TYPE_CHECKING, Any, Mapping

from ._core import RunOptions, Tracked, Tracker

if TYPE_CHECKING:
    from typing_extensions import Unpack


DOC = """A Lightning ``Logger`` that logs to a sagerun run: metrics at Lightning's step, hyperparameters
as parameters, and (opt-in) checkpoints, and the best checkpoint as a registered model.

Takes ``prefix`` (put before every metric's name) and the keywords every integration takes
(``RunOptions``: ``run``, ``experiment_name``, ``run_name``, ``session``, ``tags``, ``per_rank``,
``log_checkpoints``, ``register_model``). Without ``run`` or names it logs to ``load_run()``'s
run (an enclosing run, or the SageMaker job's), else to a new run of the experiment ``lightning``.
Only global rank 0 logs unless ``per_rank``; the logger survives pickling for spawn-based DDP.

Raises:
    TypeError, ValueError: a keyword breaks its rule (named).
"""


class LoggerMembers(Tracked):
    """Lightning's ``Logger`` members over the shared core; ``_rank_zero`` is the package's
    ``rank_zero_only``, whose ``rank`` Lightning's strategies set to the global rank."""

    _rank_zero: Any

    def __init__(self, *, prefix: str = "", **options: Unpack[RunOptions]) -> None:
        super().__init__()
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str; got {type(prefix).__name__}")
        self.tracker = Tracker("lightning", **options)
        self._prefix = prefix
        self._checkpoint_callback: Any = None

    @property
    def name(self) -> str | None:
        """The experiment."""
        run = self.tracker.active_run
        return run.experiment_name if run is not None else self.tracker.names[0]

    @property
    def version(self) -> str | None:
        """The run."""
        run = self.tracker.active_run
        return run.run_name if run is not None else self.tracker.names[1]

    @property
    def experiment(self) -> Any:
        """The ``sagerun.sync.Run`` logged to, opened on first use (``None`` on a rank that does not log)."""
        self._follow_rank()
        return self.tracker.safely(self.tracker.run)

    def _follow_rank(self) -> None:
        rank = getattr(self._rank_zero, "rank", None)
        if isinstance(rank, int):
            self.tracker.set_rank(rank)

    def log_hyperparams(self, params: Mapping[str, Any] | argparse.Namespace, *args: Any, **kwargs: Any) -> None:
        self._follow_rank()
        values = vars(params) if isinstance(params, argparse.Namespace) else params
        self.tracker.safely(self.tracker.parameters, dict(values))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._follow_rank()
        named = {f"{self._prefix}{key}": value for key, value in metrics.items()} if self._prefix else metrics
        self.tracker.safely(self.tracker.metrics, named, 0 if step is None else step)

    def save(self) -> None:
        """Nothing to do: the points are queued already, and the run's sender sends them."""

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self._checkpoint_callback = checkpoint_callback
        path = _saved_path(checkpoint_callback)
        if path:
            self.tracker.safely(self.tracker.checkpoint, path)

    def finalize(self, status: str) -> None:
        exc = None
        if status == "failed":  # Lightning calls this while it handles the exception
            exc = sys.exc_info()[1] or RuntimeError("Lightning reported that the training failed")
        self.tracker.safely(self.tracker.end, exc, self._save_model)

    def _save_model(self, folder: str) -> None:
        path = _best_path(self._checkpoint_callback)
        if not path:
            raise RuntimeError("register_model needs a checkpoint: Lightning's ModelCheckpoint saved none")
        shutil.copy2(path, os.path.join(folder, os.path.basename(path)))


def _saved_path(callback: Any) -> str | None:
    """The checkpoint ``callback`` saved last (ModelCheckpoint keeps it as ``_last_checkpoint_saved``)."""
    return getattr(callback, "_last_checkpoint_saved", None) or getattr(callback, "last_model_path", None) or None


def _best_path(callback: Any) -> str | None:
    return (getattr(callback, "best_model_path", None) or _saved_path(callback)) if callback is not None else None
