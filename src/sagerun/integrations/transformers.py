"""Integrations · Hugging Face ``Trainer``: ``Trainer(..., callbacks=[SagerunCallback()])``.

Metrics go at ``state.global_step``, named by their phase as the Trainer names them: ``eval_loss``
becomes ``eval/loss``, ``test_loss`` (``predict()``) ``test/loss``, and the rest ``train/…``. The
training's summary (``train_runtime``, ``train_loss``, ``total_flos``, …) goes in as parameters,
with the ``TrainingArguments`` and the model's config (under ``model/``). ``evaluate()`` and
``predict()`` after ``train()`` log to the same run.
"""

from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ._core import RunOptions, Tracked, Tracker
from ._names import unfinished

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SagerunCallback"]

#: what ``Trainer.train`` logs once, at its end: a run's summary, not a series
_SUMMARY = frozenset({"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos",
                      "train_loss"})
_PHASES = (("eval_", "eval/"), ("test_", "test/"))
_EVALUATIONS = tuple(raw for raw, _ in _PHASES)


class SagerunCallback(Tracked, TrainerCallback):
    """Logs a ``Trainer``'s metrics, parameters and (opt-in) checkpoints and model to a sagerun run.

    Takes the keywords every integration takes (``RunOptions``: ``run``, ``experiment_name``,
    ``run_name``, ``session``, ``tags``, ``per_rank``, ``log_checkpoints``, ``register_model``).
    Without ``run`` or names it logs to ``load_run()``'s run (an enclosing run, or the SageMaker
    job's), else to a new run of the experiment ``transformers``, closed when ``train()`` ends.
    Only global rank 0 (``args.process_index``) logs unless ``per_rank``. ``log_checkpoints``
    stores the checkpoint folders ``on_save`` names; ``register_model`` saves the model with
    ``save_pretrained`` at the end of ``train()``.

    Raises:
        TypeError, ValueError: a keyword breaks its rule (named).
    """

    def __init__(self, **options: Unpack[RunOptions]) -> None:
        self.tracker = Tracker("transformers", **options)
        self._training = False

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self.tracker.safely(self._begin, args, model)

    def _begin(self, args: Any, model: Any) -> None:
        self.tracker.set_rank(args.process_index)
        if self._training:  # the last train() raised before its end
            self.tracker.end(unfinished("transformers"))
        self._training = True
        self.tracker.parameters(args.to_dict())
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, "to_dict"):
            self.tracker.parameters(config.to_dict(), "model/")

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.tracker.safely(self._log, args, state, logs)

    def _log(self, args: Any, state: Any, logs: dict[str, Any] | None) -> None:
        self.tracker.set_rank(args.process_index)
        logs = logs or {}
        # An evaluation's log and the summary repeat the epoch, at a step the training's logs have it.
        repeats_epoch = any(key.startswith(_EVALUATIONS) or key in _SUMMARY for key in logs)
        metrics: dict[str, Any] = {}
        summary: dict[str, Any] = {}
        for key, value in logs.items():
            if key in _SUMMARY:
                summary[key] = value
            elif not (repeats_epoch and key == "epoch"):
                metrics[_phase_name(key)] = value
        self.tracker.metrics(metrics, state.global_step)
        if summary:
            self.tracker.parameters(summary)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # evaluate() logged its metrics through on_log already; outside train() it ends here.
        if not self._training:
            self.tracker.safely(self.tracker.end)

    def on_predict(self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
        self.tracker.safely(self._log, args, state, metrics)
        if not self._training:
            self.tracker.safely(self.tracker.end)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.tracker.safely(self._saved, args.output_dir, state.global_step)

    def _saved(self, output_dir: str, step: int) -> None:
        name = f"{PREFIX_CHECKPOINT_DIR}-{step}"
        folder = os.path.join(output_dir, name)
        if not os.path.isdir(folder):  # hyperparameter_search saves each trial under run-<trial>/
            found = sorted(glob.glob(os.path.join(glob.escape(output_dir), "*", name)), key=os.path.getmtime)
            folder = found[-1] if found else folder
        self.tracker.checkpoint(folder)

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._training = False
        self.tracker.safely(self.tracker.end, None, None if model is None else model.save_pretrained)


def _phase_name(key: str) -> str:
    for raw, phase in _PHASES:
        if key.startswith(raw):
            return phase + key[len(raw):]
    return "train/" + key
