"""An async training loop: linear regression by mini-batch gradient descent, logged with sagerun.

    python examples/async_training_loop.py

Logs to the embedded local store (``$SAGERUN_HOME``, else ``./sagerun``) unless
``SAGERUN_BACKEND=sagemaker``. Look at the run afterwards with ``sagerun show``.
"""

import os

import anyio
import numpy as np

import sagerun


async def main() -> None:
    rng = np.random.default_rng(0)
    true_weights = np.array([2.0, -3.0, 0.5])
    features = rng.normal(size=(4_096, 3))
    targets = features @ true_weights + rng.normal(scale=0.1, size=len(features))

    session = sagerun.Session(backend=os.environ.get("SAGERUN_BACKEND", "local"))
    lr, batch_size, epochs = 0.05, 32, 20
    weights = np.zeros(3)
    step = 0
    async with sagerun.Run(experiment_name="linear-regression", run_name="async-sgd", session=session) as run:
        run.log_parameters({"lr": lr, "batch_size": batch_size, "epochs": epochs, "optimizer": "sgd"})
        for epoch in range(epochs):
            order = rng.permutation(len(features))
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                error = features[batch] @ weights - targets[batch]
                weights -= lr * features[batch].T @ error / len(batch)
                # Only queues the point: the training loop never waits on the network.
                await run.log_metric("train:mse", float((error ** 2).mean()), step=step)
                step += 1
            full_mse = float(((features @ weights - targets) ** 2).mean())
            await run.log_metrics({"epoch:mse": full_mse, "epoch:weight-error": float(np.abs(weights - true_weights).max())},
                                  step=epoch)

        await run.flush()  # wait until everything logged so far is delivered
        stats = run.ingest_stats
        print(f"run {run.experiment_name}/{run.run_name}: {step} steps, final mse {full_mse:.4f}")
        print(f"points: {stats.enqueued} enqueued, {stats.delivered} delivered, {stats.failed} failed, "
              f"{stats.dropped} dropped, lag {stats.lag:.2f} s")
    # Leaving the block flushed the rest and marked the run Completed.


if __name__ == "__main__":
    anyio.run(main)
