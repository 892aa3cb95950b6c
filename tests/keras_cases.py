"""Keras 3 on the JAX backend with ``SagerunCallback``: a small model built here, trained on CPU,
read back as a user reads it (``sagerun show`` / ``sagerun export``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

os.environ.setdefault("KERAS_BACKEND", "jax")  # before Keras is imported: its backend is chosen then

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")

from sagerun.integrations.keras import SagerunCallback  # noqa: E402
from tracked import local_session, read, runs  # noqa: E402

DATA = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
TARGET = DATA @ np.array([1.0, -2.0, 0.5, 3.0], dtype="float32")


def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    built = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    built.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    return built


def test_fit_logs_epochs_and_batches_on_two_axes_and_evaluate_the_same_run(tmp_path):
    callback = SagerunCallback(experiment_name="keras", run_name="dense", session=local_session(tmp_path),
                               log_every_n_batches=2, register_model="dense-model")
    trained = model()
    trained.fit(DATA, TARGET, batch_size=8, epochs=3, validation_split=0.25, callbacks=[callback], verbose=0)
    assert callback.run is None  # closed when fit() returned
    trained.evaluate(DATA, TARGET, batch_size=16, callbacks=[callback], verbose=0)

    (listed,) = runs(tmp_path)
    logged = read(tmp_path, "keras/dense")
    assert listed["status"] == logged.status == "Completed"
    assert logged.series["train/epoch/loss"][0] == [0, 1, 2] and logged.series["eval/epoch/loss"][0] == [0, 1, 2]
    assert logged.series["train/epoch/mae"][0] == [0, 1, 2]
    # 48 training rows in batches of 8: 6 a epoch, 18 in all, every second one logged
    assert logged.series["train/batch/loss"][0] == [1, 3, 5, 7, 9, 11, 13, 15, 17]
    assert logged.series["test/loss"][0] == [3]  # evaluate() after fit(): at the epochs trained
    assert not any(name.startswith("test/") and "epoch" in name for name in logged.series)
    parameters = logged.parameters
    assert parameters["fit/epochs"] == 3 and parameters["fit/steps"] == 6 and parameters["model/parameters"] == 49
    assert parameters["optimizer/name"] == "adam" and parameters["optimizer/learning_rate"] == pytest.approx(0.01)
    assert "model:dense-model" in logged.outputs and callback.stats.errors == 0


def test_batches_can_be_left_out(tmp_path):
    callback = SagerunCallback(experiment_name="keras", run_name="epochs", session=local_session(tmp_path),
                               log_every_n_batches=None)
    model().fit(DATA, TARGET, batch_size=8, epochs=2, callbacks=[callback], verbose=0)
    assert sorted(read(tmp_path, "keras/epochs").series) == ["train/epoch/loss", "train/epoch/mae"]


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="log_every_n_batches must be an int >= 0 or None"):
        SagerunCallback(log_every_n_batches=-1)
    with pytest.raises(ValueError, match="the keras integration is not told when a checkpoint is saved"):
        SagerunCallback(log_checkpoints="all")


def test_a_fit_that_raises_ends_its_run_failed(tmp_path):
    script = textwrap.dedent(f"""
        import os
        os.environ["KERAS_BACKEND"] = "jax"
        import keras, numpy as np, sagerun
        from sagerun.integrations.keras import SagerunCallback

        class Diverged(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == 2:
                    raise FloatingPointError("loss is inf")

        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        callback = SagerunCallback(experiment_name="keras", run_name="crash",
                                   session=sagerun.Session(backend="local", store={str(tmp_path)!r}))
        model.fit(np.ones((32, 4)), np.ones(32), batch_size=4, epochs=1, callbacks=[callback, Diverged()], verbose=0)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "loss is inf" in done.stderr
    logged = read(tmp_path, "keras/crash")
    assert logged.status == "Failed" and logged.shown["status_message"] == "FloatingPointError: loss is inf"
    assert logged.series["train/batch/loss"][0] == [0, 1, 2]
