"""Lightning with ``SagerunLogger``: a BoringModel-style module built here, trained on CPU (two
processes under DDP for the ranks), read back as a user reads it (``sagerun show`` / ``export``)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")
lightning = pytest.importorskip("lightning")

import sagerun.sync  # noqa: E402
from sagerun.integrations.lightning import SagerunLogger  # noqa: E402
from tracked import local_session, read, runs  # noqa: E402

MODULE = '''
import torch
from torch.utils.data import DataLoader
from {package} import LightningModule


class Boring(LightningModule):
    def __init__(self, lr=0.1, fail_at=None):
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(32, 2)

    def loss(self, batch):
        out = self.layer(batch)
        return torch.nn.functional.mse_loss(out, torch.ones_like(out))

    def training_step(self, batch, batch_idx):
        if self.hparams.fail_at is not None and self.global_step >= self.hparams.fail_at:
            raise RuntimeError("the loss diverged")
        loss = self.loss(batch)
        self.log("train_loss", loss)
        self.log("rank", float(self.global_rank))
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.loss(batch))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self.loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    def train_dataloader(self):
        return DataLoader(torch.randn(16, 32, generator=torch.Generator().manual_seed(0)), batch_size=2)

    def val_dataloader(self):
        return DataLoader(torch.randn(4, 32), batch_size=2)

    test_dataloader = val_dataloader
'''
exec(MODULE.format(package="lightning.pytorch"))


def fit(tmp_path: Path, logger: object, module: object = None, trainer_module: object = lightning.pytorch, **options):
    trainer = trainer_module.Trainer(
        max_epochs=2, log_every_n_steps=1, accelerator="cpu", devices=1, logger=logger, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=str(tmp_path / "root"), **{"enable_checkpointing": False,
                                                                                 **options})
    module = module if module is not None else Boring()  # noqa: F821
    trainer.fit(module)
    return trainer, module


def test_fit_then_test_logs_one_run_at_lightnings_steps(tmp_path):
    logger = SagerunLogger(experiment_name="lightning", run_name="boring", session=local_session(tmp_path))
    trainer, module = fit(tmp_path, logger)
    assert logger.run is None  # closed by finalize("success"): every point is in the store
    trainer.test(module, verbose=False)

    (listed,) = runs(tmp_path)
    logged = read(tmp_path, "lightning/boring")
    assert listed["status"] == logged.status == "Completed"
    steps, losses = logged.series["train_loss"]
    assert steps == list(range(16)) and len(losses) == 16  # 8 batches an epoch, 2 epochs
    assert logged.series["val_loss"][0] == [7, 15] and logged.series["epoch"][0][-1] == 16
    assert logged.series["test_loss"][0] == [16]  # test() after fit(): the same run, at the step reached
    assert logged.parameters == {"lr": 0.1, "fail_at": "None"}
    assert logger.name == "lightning" and logger.version == "boring" and logger.stats.errors == 0


def test_a_training_that_raises_ends_the_run_failed_with_its_error(tmp_path):
    logger = SagerunLogger(experiment_name="lightning", run_name="diverged", session=local_session(tmp_path))
    with pytest.raises(RuntimeError, match="the loss diverged"):
        fit(tmp_path, logger, Boring(fail_at=3))  # noqa: F821
    logged = read(tmp_path, "lightning/diverged")
    assert logged.status == "Failed" and logged.shown["status_message"] == "RuntimeError: the loss diverged"
    assert logged.series["train_loss"][0] == [0, 1, 2]


def test_checkpoints_are_stored_as_saved_and_the_best_registered(tmp_path):
    logger = SagerunLogger(experiment_name="lightning", run_name="ckpt", session=local_session(tmp_path),
                           log_checkpoints="all", register_model="boring-model", prefix="fit/")
    checkpoints = lightning.pytorch.callbacks.ModelCheckpoint(every_n_epochs=1, save_top_k=-1)
    fit(tmp_path, logger, enable_checkpointing=True, callbacks=[checkpoints])
    logged = read(tmp_path, "lightning/ckpt")
    assert sorted(logged.outputs) == ["epoch=0-step=8.ckpt", "epoch=1-step=16.ckpt", "model:boring-model"]
    assert "fit/train_loss" in logged.series


def test_a_given_run_is_logged_to_and_left_open(tmp_path):
    with sagerun.sync.Run("lightning", "given", session=local_session(tmp_path)) as run:
        logger = SagerunLogger(run=run)
        fit(tmp_path, logger)
        assert logger.experiment is run
        run.log_metric("after", 1.0, step=99)
    assert read(tmp_path, "lightning/given").series["after"] == ([99], [1.0])


def test_the_logger_survives_pickling_and_logs_to_the_same_run(tmp_path):
    logger = SagerunLogger(experiment_name="lightning", run_name="pickled", session=local_session(tmp_path))
    logger.log_metrics({"loss": 1.0}, step=0)
    copy = pickle.loads(pickle.dumps(logger))  # as spawn-based DDP sends it to each process
    logger.finalize("success")
    copy.log_metrics({"loss": 0.5}, step=1)
    copy.finalize("success")
    assert read(tmp_path, "lightning/pickled").series == {"loss": ([0, 1], [1.0, 0.5])}


def test_the_older_pytorch_lightning_package_is_supported(tmp_path):
    pytorch_lightning = pytest.importorskip("pytorch_lightning")
    from sagerun.integrations.pytorch_lightning import SagerunLogger as OlderLogger

    namespace: dict[str, object] = {}
    exec(MODULE.format(package="pytorch_lightning"), namespace)
    logger = OlderLogger(experiment_name="lightning", run_name="older", session=local_session(tmp_path))
    fit(tmp_path, logger, namespace["Boring"](), trainer_module=pytorch_lightning)
    logged = read(tmp_path, "lightning/older")
    assert logged.status == "Completed" and logged.series["train_loss"][0] == list(range(16))


DDP = MODULE.format(package="lightning.pytorch") + '''
import sys
import lightning.pytorch
import sagerun
from sagerun.integrations.lightning import SagerunLogger

if __name__ == "__main__":
    logger = SagerunLogger(experiment_name="ddp", run_name="two-ranks", per_rank=sys.argv[2] == "per-rank",
                           session=sagerun.Session(backend="local", store=sys.argv[1], linger=0.005))
    trainer = lightning.pytorch.Trainer(max_epochs=1, log_every_n_steps=1, accelerator="cpu", devices=2,
                                        strategy="ddp", logger=logger, enable_progress_bar=False,
                                        enable_model_summary=False, enable_checkpointing=False,
                                        default_root_dir=sys.argv[1])
    trainer.fit(Boring())
'''


@pytest.mark.parametrize("mode", ["rank-zero", "per-rank"])
def test_ddp_on_two_processes_gives_one_run(tmp_path, mode):
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(DDP))
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "store"), mode], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    (listed,) = runs(tmp_path / "store")
    logged = read(tmp_path / "store", "ddp/two-ranks")
    assert listed["status"] == "Completed"
    if mode == "rank-zero":  # 8 batches shared by 2 ranks: 4 steps, each logged by rank 0 alone
        assert logged.series["rank"] == ([0, 1, 2, 3], [0.0] * 4) and logged.parameters["lr"] == 0.1
    else:
        assert logged.series["rank0/rank"] == ([0, 1, 2, 3], [0.0] * 4)
        assert logged.series["rank1/rank"] == ([0, 1, 2, 3], [1.0] * 4)
        assert logged.parameters == {"lr": 0.1, "fail_at": "None"}  # from rank 0 alone
