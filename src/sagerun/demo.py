"""Entry · ``sagerun demo``: a small but real training loop, logged to the local store through the public API.

Multinomial logistic regression in numpy on scikit-learn's handwritten digits (shipped with
scikit-learn, nothing is downloaded), trained by mini-batch gradient descent: ``train:loss`` is
logged at every step, ``train:accuracy``, ``val:loss`` and ``val:accuracy`` once per epoch.
"""

from __future__ import annotations

import dataclasses
import secrets
import time

import numpy as np

import sagerun

EXPERIMENT = "sagerun-demo"


@dataclasses.dataclass(frozen=True)
class DemoResult:
    """Where the demo's run went and how it did."""

    experiment: str
    run: str
    store: str
    steps: int
    val_accuracy: float
    seconds: float

    @property
    def ref(self) -> str:
        return f"{self.experiment}/{self.run}"


async def train(store: str, *, epochs: int = 30, lr: float = 0.5, batch_size: int = 64, l2: float = 1e-4,
                seed: int = 0, run_name: str | None = None) -> DemoResult:
    """Train the digits classifier and log the run to the local store in ``store``.

    Raises:
        ValueError: ``epochs`` or ``batch_size`` is not a positive integer, or ``lr`` not positive.
        BackendError: the local store could not be written.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if not lr > 0:
        raise ValueError(f"lr must be a positive number; got {lr!r}")
    from sklearn.datasets import load_digits  # a second of import: only when the demo runs

    started = time.perf_counter()
    digits = load_digits()
    rng = np.random.default_rng(seed)
    features = np.hstack([digits.data / 16.0, np.ones((len(digits.data), 1))])  # pixels in [0, 1], and a bias
    labels = digits.target
    order = rng.permutation(len(labels))
    n_val = len(labels) // 5
    val, fit = order[:n_val], order[n_val:]
    classes = int(labels.max()) + 1
    weights = np.zeros((features.shape[1], classes))

    run_name = run_name or f"digits-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    session = sagerun.Session(backend="local", store=store)
    step = 0
    async with sagerun.Run(experiment_name=EXPERIMENT, run_name=run_name, session=session) as run:
        run.log_parameters({
            "model": "multinomial-logistic-regression", "dataset": "sklearn.datasets.load_digits",
            "optimizer": "minibatch-sgd", "lr": lr, "batch_size": batch_size, "epochs": epochs, "l2": l2,
            "seed": seed, "n_train": len(fit), "n_val": n_val, "n_features": features.shape[1] - 1,
        })
        for epoch in range(epochs):
            shuffled = rng.permutation(fit)
            for start in range(0, len(shuffled), batch_size):
                batch = shuffled[start:start + batch_size]
                loss, gradient = _loss_and_gradient(weights, features[batch], labels[batch], l2)
                weights -= lr * gradient
                await run.log_metric("train:loss", loss, step=step)
                step += 1
            train_loss, train_accuracy = _evaluate(weights, features[fit], labels[fit])
            val_loss, val_accuracy = _evaluate(weights, features[val], labels[val])
            await run.log_metrics({"train:accuracy": train_accuracy, "val:loss": val_loss,
                                   "val:accuracy": val_accuracy}, step=epoch)
        predicted = _probabilities(weights, features[val]).argmax(axis=1)
        await run.log_confusion_matrix(labels[val], predicted, title="val-confusion")
    return DemoResult(EXPERIMENT, run.run_name, session.store_path, step, val_accuracy,
                      time.perf_counter() - started)


def _probabilities(weights: np.ndarray, features: np.ndarray) -> np.ndarray:
    logits = features @ weights
    logits -= logits.max(axis=1, keepdims=True)  # keeps exp() from overflowing
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _loss_and_gradient(weights: np.ndarray, features: np.ndarray, labels: np.ndarray,
                       l2: float) -> tuple[float, np.ndarray]:
    """Mean cross-entropy plus L2 penalty, and its gradient with respect to ``weights``."""
    probabilities = _probabilities(weights, features)
    rows = np.arange(len(labels))
    loss = -np.log(probabilities[rows, labels] + 1e-12).mean() + 0.5 * l2 * float((weights ** 2).sum())
    probabilities[rows, labels] -= 1.0
    return float(loss), features.T @ probabilities / len(labels) + l2 * weights


def _evaluate(weights: np.ndarray, features: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    probabilities = _probabilities(weights, features)
    loss = -np.log(probabilities[np.arange(len(labels)), labels] + 1e-12).mean()
    return float(loss), float((probabilities.argmax(axis=1) == labels).mean())
