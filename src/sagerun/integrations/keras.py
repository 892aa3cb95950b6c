"""Integrations · Keras 3, on any backend: ``model.fit(..., callbacks=[SagerunCallback()])``.

Two step axes, kept apart by name so that they never mix: epoch metrics at the epoch
(``train/epoch/loss``, and ``eval/epoch/loss`` for Keras's ``val_loss``), and batch metrics, the
epoch's running averages Keras reports, at the global batch index every ``log_every_n_batches``
batches (``train/batch/loss``). ``evaluate()`` outside ``fit()`` logs ``test/…`` at the number of
epochs trained, to the same run. Parameters: ``fit``'s (``fit/epochs``, ``fit/steps``), the
optimizer's configuration (``optimizer/…``) and the model's size.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import keras

from ._core import RunOptions, Tracked, Tracker
from ._names import unfinished

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SagerunCallback"]


class SagerunCallback(Tracked, keras.callbacks.Callback):
    """Logs a Keras model's training to a sagerun run.

    Takes ``log_every_n_batches`` (``None`` or 0: no batch metrics) and the keywords every
    integration takes (``RunOptions``: ``run``, ``experiment_name``, ``run_name``, ``session``,
    ``tags``, ``per_rank``, ``register_model``; ``log_checkpoints`` is refused: store a checkpoint
    with ``run.log_file`` where you save it). Without ``run`` or names it
    logs to ``load_run()``'s run, else to a new run of the experiment ``keras``, closed when
    ``fit()`` ends. ``register_model`` saves the model as ``model.keras``.

    Raises:
        TypeError, ValueError: a keyword breaks its rule (named).
    """

    def __init__(self, *, log_every_n_batches: int | None = 1, **options: Unpack[RunOptions]) -> None:
        super().__init__()
        if log_every_n_batches is not None and (type(log_every_n_batches) is not int or log_every_n_batches < 0):
            raise ValueError(f"log_every_n_batches must be an int >= 0 or None; got {log_every_n_batches!r}")
        self.tracker = Tracker("keras", checkpoints=False, **options)
        self._every = log_every_n_batches or 0
        self._training = False
        self._epoch = 0
        self._epochs_done = 0
        self._batches_before_epoch = 0
        self._last_batch = -1

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.tracker.safely(self._begin)

    def _begin(self) -> None:
        if self._training:  # the last fit() raised before its end
            self.tracker.end(unfinished("keras"))
        self._training = True
        self.tracker.parameters({key: value for key, value in (self.params or {}).items()}, "fit/")
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            self.tracker.parameters(optimizer.get_config(), "optimizer/")
        self.tracker.parameters({"model/name": self.model.name, "model/parameters": self.model.count_params()})

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        steps = (self.params or {}).get("steps")
        if steps:  # fit(initial_epoch=...) resumes the axis where it was
            self._batches_before_epoch = epoch * steps
        self._last_batch = -1

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._last_batch = batch
        index = self._batches_before_epoch + batch
        if self._every and logs and (index + 1) % self._every == 0:
            self.tracker.safely(self.tracker.metrics, {f"train/batch/{key}": value for key, value in logs.items()},
                                index)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        metrics = {(f"eval/epoch/{key[4:]}" if key.startswith("val_") else f"train/epoch/{key}"): value
                   for key, value in (logs or {}).items()}
        self.tracker.safely(self.tracker.metrics, metrics, epoch)
        self._epochs_done = epoch + 1
        if not (self.params or {}).get("steps"):
            self._batches_before_epoch += self._last_batch + 1

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._training:  # fit()'s validation: its values come with the epoch's, as val_…
            return
        metrics = {f"test/{key}": value for key, value in (logs or {}).items()}
        self.tracker.safely(self.tracker.metrics, metrics, self._epochs_done)
        self.tracker.safely(self.tracker.end)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._training = False
        self.tracker.safely(self.tracker.end, None, self._save_model)

    def _save_model(self, folder: str) -> None:
        self.model.save(os.path.join(folder, "model.keras"))
