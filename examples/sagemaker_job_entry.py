"""The entry script of a SageMaker training job that logs to the run that started it.

In SageMaker, start the job from a notebook or a launcher script with the run's experiment_config,
as with the SageMaker SDK:

    from sagemaker.estimator import Estimator
    from sagerun.sync import Run

    with Run(experiment_name="churn", run_name="xgb-depth-6") as run:
        run.log_parameter("max_depth", 6)
        estimator = Estimator(entry_point="sagemaker_job_entry.py", ...)
        estimator.fit(inputs, experiment_config=run.experiment_config)

Inside the job, ``load_run()`` describes the job (``TRAINING_JOB_ARN``) and opens the run its
``ExperimentConfig`` names; the job's role needs ``sagemaker:DescribeTrainingJob`` besides the
actions listed in the quick start.

Run as-is outside SageMaker (``python examples/sagemaker_job_entry.py``), it opens the run itself
and calls the same ``train()`` inside it: there ``load_run()`` finds the current run, as it does
with the SageMaker SDK. It logs to the local store unless ``SAGERUN_BACKEND=sagemaker``.
"""

import os

import numpy as np

from sagerun.sync import Run, Session, load_run


def train(epochs: int = 10) -> None:
    """The training code: it never names the run, ``load_run()`` finds it."""
    rng = np.random.default_rng(1)
    with load_run() as run:
        run.log_parameters({"epochs": epochs, "framework": "numpy"})
        loss = 1.0
        for epoch in range(epochs):
            loss *= 0.7 + 0.1 * rng.random()
            run.log_metric("train:loss", loss, step=epoch)
        # A job writes its model under /opt/ml/model; record where it went.
        run.log_artifact("model", os.environ.get("SM_MODEL_DIR", "/opt/ml/model"), media_type="text/plain")
        print(f"{run.experiment_name}/{run.run_name}: final loss {loss:.4f}")


if __name__ == "__main__":
    if "TRAINING_JOB_ARN" in os.environ:
        train()   # in the job: the run comes from the job's ExperimentConfig
    else:
        session = Session(backend=os.environ.get("SAGERUN_BACKEND", "local"))
        with Run(experiment_name="churn", run_name="local-try", session=session):
            train()
