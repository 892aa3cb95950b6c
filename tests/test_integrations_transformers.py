"""Hugging Face ``Trainer`` with ``SagerunCallback``: a two-parameter regression model built here,
trained on CPU, read back as a user reads it (``sagerun show`` / ``sagerun export``)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import sagerun.sync  # noqa: E402
from sagerun._artifacts.storage import path_of_uri  # noqa: E402
from sagerun.integrations.transformers import SagerunCallback  # noqa: E402
from tracked import local_session, read, runs  # noqa: E402

MODEL = '''
import torch
from transformers import PretrainedConfig, PreTrainedModel


class RegressionConfig(PretrainedConfig):
    model_type = "tiny-regression"

    def __init__(self, a=0.0, b=0.0, fail_at=None, **kwargs):
        super().__init__(**kwargs)
        self.a, self.b, self.fail_at = a, b, fail_at


class RegressionModel(PreTrainedModel):
    config_class = RegressionConfig

    def __init__(self, config):
        super().__init__(config)
        self.a = torch.nn.Parameter(torch.tensor(config.a))
        self.b = torch.nn.Parameter(torch.tensor(config.b))
        self.calls = 0
        self.post_init()

    def _init_weights(self, module):
        pass

    def forward(self, input_x, labels=None, **kwargs):
        self.calls += 1
        if self.config.fail_at is not None and self.calls >= self.config.fail_at:
            raise RuntimeError("the loss went NaN")
        y = input_x * self.a + self.b
        return (y,) if labels is None else (torch.nn.functional.mse_loss(y, labels), y)


class Line(torch.utils.data.Dataset):
    def __init__(self, n):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, generator=generator)
        self.y = 2 * self.x + 3

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"input_x": self.x[i], "labels": self.y[i]}
'''
exec(MODEL)  # the same model in this process and in the scripts below


def trainer(tmp_path: Path, callback: SagerunCallback, steps: int = 12, **arguments) -> transformers.Trainer:
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=steps, logging_steps=1, per_device_train_batch_size=8,
        learning_rate=0.1, report_to="none", use_cpu=True, disable_tqdm=True, save_strategy="no", **arguments)
    return transformers.Trainer(model=RegressionModel(RegressionConfig()), args=args,  # noqa: F821
                                train_dataset=Line(64), eval_dataset=Line(16), callbacks=[callback])  # noqa: F821


def test_train_then_evaluate_logs_one_run_with_every_step_and_its_parameters(tmp_path):
    callback = SagerunCallback(experiment_name="hf", run_name="regression", session=local_session(tmp_path))
    hf = trainer(tmp_path, callback, eval_strategy="steps", eval_steps=6)
    hf.train()
    assert callback.run is None  # closed when train() returned: every point is in the store
    hf.evaluate()
    hf.predict(Line(8))  # noqa: F821

    (listed,) = runs(tmp_path)
    logged = read(tmp_path, "hf/regression")
    assert logged.status == "Completed" and listed["run"] == "regression"
    steps, losses = logged.series["train/loss"]
    assert steps == list(range(1, 13)) and len(losses) == 12 and losses[-1] < losses[0]
    assert logged.series["train/learning_rate"][0][-1] == 12 and logged.series["train/epoch"][0] == steps
    # Two during train(); evaluate() after it logs step 12 again, which the reopened run has: skipped.
    assert logged.series["eval/loss"][0] == [6, 12]
    assert logged.series["test/loss"][0] == [12]
    assert not any(name.startswith("train/train_") or name == "train/total_flos" for name in logged.series)
    parameters = logged.parameters
    assert parameters["learning_rate"] == 0.1 and parameters["max_steps"] == 12 and parameters["model/a"] == 0
    assert parameters["model/model_type"] == "tiny-regression" and parameters["train_runtime"] > 0
    assert 0 < parameters["train_loss"] and "hub_token" not in parameters
    assert logged.shown["tags"] == {"sagerun:integration": "transformers"}
    assert callback.stats.errors == 0 and callback.stats.skipped == 0


def test_a_given_run_is_logged_to_and_left_open(tmp_path):
    with sagerun.sync.Run("hf", "given", session=local_session(tmp_path)) as run:
        callback = SagerunCallback(run=run)
        trainer(tmp_path, callback, steps=4).train()
        assert callback.run is run
        run.log_metric("after", 1.0, step=5)
    logged = read(tmp_path, "hf/given")
    assert logged.series["train/loss"][0] == [1, 2, 3, 4] and logged.series["after"] == ([5], [1.0])


def test_the_last_checkpoint_is_stored_as_an_archive_of_its_folder(tmp_path):
    callback = SagerunCallback(experiment_name="hf", run_name="checkpoints", session=local_session(tmp_path),
                               log_checkpoints="last", register_model="tiny-regression")
    hf = trainer(tmp_path, callback, steps=6)
    hf.args.save_strategy = "steps"
    hf.args.save_steps = 3
    hf.train()
    outputs = read(tmp_path, "hf/checkpoints").outputs
    assert set(outputs) == {"checkpoint-6", "model:tiny-regression"}
    with tarfile.open(path_of_uri(outputs["checkpoint-6"]["value"])) as archive:
        assert "model.safetensors" in archive.getnames() and "trainer_state.json" in archive.getnames()
    with tarfile.open(path_of_uri(outputs["model:tiny-regression"]["value"])) as archive:
        assert "config.json" in archive.getnames()


def test_a_training_that_raises_ends_its_run_failed(tmp_path):
    script = MODEL + textwrap.dedent(f"""
        import sagerun, transformers
        from sagerun.integrations.transformers import SagerunCallback
        args = transformers.TrainingArguments(output_dir={str(tmp_path / "out")!r}, max_steps=10, logging_steps=1,
                                              report_to="none", use_cpu=True, disable_tqdm=True, save_strategy="no")
        callback = SagerunCallback(experiment_name="hf", run_name="crash",
                                   session=sagerun.Session(backend="local", store={str(tmp_path)!r}))
        model = RegressionModel(RegressionConfig(fail_at=4))
        transformers.Trainer(model=model, args=args, train_dataset=Line(64), callbacks=[callback]).train()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "the loss went NaN" in done.stderr
    logged = read(tmp_path, "hf/crash")
    assert logged.status == "Failed" and logged.shown["status_message"] == "RuntimeError: the loss went NaN"
    assert logged.series["train/loss"][0] == [1, 2, 3]


def test_train_again_after_one_that_raised_goes_on_in_the_same_run(tmp_path):
    callback = SagerunCallback(experiment_name="hf", session=local_session(tmp_path))
    broken = trainer(tmp_path, callback, steps=5)
    broken.model.config.fail_at = 3
    with pytest.raises(RuntimeError, match="the loss went NaN"):
        broken.train()
    trainer(tmp_path, callback, steps=4).train()
    assert [r["status"] for r in runs(tmp_path)] == ["Completed"]  # a callback keeps to its run
    # The run goes on where it was: the steps it has (1 and 2) are not logged twice.
    assert read(tmp_path, f"hf/{runs(tmp_path)[0]['run']}").series["train/loss"][0] == [1, 2, 3, 4]
