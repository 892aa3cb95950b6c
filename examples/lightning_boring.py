"""A Lightning training that logs to a sagerun run through ``SagerunLogger``: a BoringModel (one
linear layer on random data) trained on CPU, its last checkpoint stored with the run and registered
as a model.

    python examples/lightning_boring.py
    sagerun show boring/linear-32
    sagerun models

Needs torch and lightning (``pip install -e ".[test]"`` brings them). Logs to the embedded local
store unless ``SAGERUN_BACKEND=sagemaker``.
"""

import os
import tempfile

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from sagerun import Session
from sagerun.integrations.lightning import SagerunLogger


class BoringModel(pl.LightningModule):
    def __init__(self, lr=0.1):
        super().__init__()
        self.save_hyperparameters()  # logged as the parameter lr
        self.layer = torch.nn.Linear(32, 2)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.layer(batch[0]).pow(2).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def random_data(n, seed):
    return DataLoader(TensorDataset(torch.randn(n, 32, generator=torch.Generator().manual_seed(seed))), batch_size=8)


logger = SagerunLogger(experiment_name="boring", run_name="linear-32", log_checkpoints="last",
                       register_model="boring-linear",
                       session=Session(backend=os.environ.get("SAGERUN_BACKEND", "local")))
with tempfile.TemporaryDirectory() as root:
    trainer = pl.Trainer(max_epochs=4, logger=logger, log_every_n_steps=1, default_root_dir=root,
                         accelerator="cpu", enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(BoringModel(), random_data(64, 0), random_data(16, 1))
    # fit() ended the run Completed: the last checkpoint is stored, and registered as boring-linear

loss = trainer.callback_metrics["val/loss"].item()
print(f"boring/linear-32: {logger.stats.points} points logged, final loss {loss:.4f}")
