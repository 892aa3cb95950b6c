"""A Keras 3 model on the JAX backend that logs to a sagerun run through ``SagerunCallback``: a small
``Sequential`` regression on random data, trained on CPU, then evaluated after ``fit()``.

    python examples/keras_jax.py
    sagerun show keras-jax/dense-16

Needs keras and jax (``pip install -e ".[test]"`` brings them). Logs to the embedded local
store unless ``SAGERUN_BACKEND=sagemaker``.
"""

import os

os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported

import keras
import numpy as np

from sagerun import Session
from sagerun.integrations.keras import SagerunCallback

generator = np.random.default_rng(0)
x = generator.normal(size=(512, 8)).astype("float32")
y = x @ generator.normal(size=(8, 1)).astype("float32") + 0.1 * generator.normal(size=(512, 1)).astype("float32")

keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)],
                         name="dense-16")
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])

# Epoch metrics at the epoch (train/epoch/loss, eval/epoch/loss for val_loss); batch metrics at the
# global batch index, every 4th batch here (train/batch/loss).
callback = SagerunCallback(experiment_name="keras-jax", run_name="dense-16", log_every_n_batches=4,
                           session=Session(backend=os.environ.get("SAGERUN_BACKEND", "local")))
model.fit(x[:384], y[:384], validation_data=(x[384:], y[384:]), epochs=10, batch_size=32, verbose=0,
          callbacks=[callback])  # 12 batches an epoch; the run closes when fit() ends
loss, mae = model.evaluate(x[384:], y[384:], verbose=0, callbacks=[callback])  # test/loss at step 10, same run

print(f"keras-jax/dense-16: {callback.stats.points} points logged, final loss {loss:.4f}")
