"""A Hugging Face ``Trainer`` that logs to a sagerun run through ``SagerunCallback``: a model of two
parameters (y = a·x + b) built here, trained on CPU, then evaluated again after ``train()``.

    python examples/hf_trainer.py
    sagerun show hf-regression/two-params

Needs torch and transformers (``pip install -e ".[test]"`` brings them). Logs to the embedded local
store unless ``SAGERUN_BACKEND=sagemaker``.
"""

import os
import tempfile

import torch
from transformers import PretrainedConfig, PreTrainedModel, PrinterCallback, Trainer, TrainingArguments

from sagerun import Session
from sagerun.integrations.transformers import SagerunCallback


class LineConfig(PretrainedConfig):
    model_type = "line"

    def __init__(self, a=0.0, b=0.0, **kwargs):
        super().__init__(**kwargs)
        self.a, self.b = a, b


class LineModel(PreTrainedModel):
    config_class = LineConfig

    def __init__(self, config):
        super().__init__(config)
        self.a = torch.nn.Parameter(torch.tensor(config.a))
        self.b = torch.nn.Parameter(torch.tensor(config.b))
        self.post_init()

    def _init_weights(self, module):
        pass  # a and b start at the config's values

    def forward(self, x, labels=None):
        y = self.a * x + self.b
        return (y,) if labels is None else (torch.nn.functional.mse_loss(y, labels), y)


def points(n, seed):
    x = torch.randn(n, generator=torch.Generator().manual_seed(seed))
    return [{"x": xi, "labels": 2 * xi + 3} for xi in x]


callback = SagerunCallback(experiment_name="hf-regression", run_name="two-params",
                           session=Session(backend=os.environ.get("SAGERUN_BACKEND", "local")))
with tempfile.TemporaryDirectory() as out:
    args = TrainingArguments(output_dir=out, max_steps=40, learning_rate=0.1, per_device_train_batch_size=8,
                             logging_steps=1, eval_strategy="steps", eval_steps=20, save_strategy="no",
                             report_to="none", use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=LineModel(LineConfig()), args=args, train_dataset=points(128, 0),
                      eval_dataset=points(32, 1), callbacks=[callback])
    trainer.remove_callback(PrinterCallback)  # the run keeps the logs; no need to print them too
    trainer.train()  # train/loss at every step, eval/loss at steps 20 and 40; the run closes at the end
    final = trainer.evaluate()  # reopens the same run: one more eval/loss at step 40

print(f"hf-regression/two-params: {callback.stats.points} points logged, final loss {final['eval_loss']:.4f}")
