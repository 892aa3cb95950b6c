"""Several processes (ranks of a distributed job) log to one run.

    python examples/multiprocess_ranks.py

The launcher opens the run and starts one process per rank; each rank opens the same run by its
names with ``load_run(run_name=..., experiment_name=...)`` and logs its own series. A run cannot be
pickled or shared with a child process: pass its names. In a SageMaker job every rank can call
``load_run()`` with no names instead: each finds the run from the job.
"""

import multiprocessing
import os

import numpy as np

from sagerun.sync import Run, Session, load_run

EXPERIMENT, RUN, RANKS, STEPS = "ddp-demo", "four-ranks", 4, 500


def session() -> Session:
    return Session(backend=os.environ.get("SAGERUN_BACKEND", "local"))


def worker(rank: int) -> None:
    rng = np.random.default_rng(rank)
    with load_run(run_name=RUN, experiment_name=EXPERIMENT, session=session()) as run:
        loss = 2.0
        for step in range(STEPS):
            loss *= 0.99 + 0.005 * rng.random()
            run.log_metric(f"rank{rank}:loss", loss, step=step)
        run.log_metric(f"rank{rank}:samples-per-second", 1_000 + 50 * rng.random(), step=STEPS - 1)


def main() -> None:
    with Run(experiment_name=EXPERIMENT, run_name=RUN, session=session()) as run:
        run.log_parameters({"world_size": RANKS, "steps": STEPS})
        run.flush()  # save the parameters before the ranks open the run
        # "spawn" starts fresh interpreters, as torchrun does; each rank has its own sagerun engine.
        context = multiprocessing.get_context("spawn")
        ranks = [context.Process(target=worker, args=(rank,)) for rank in range(RANKS)]
        for process in ranks:
            process.start()
        for process in ranks:
            process.join()
        failed = [rank for rank, process in enumerate(ranks) if process.exitcode != 0]
        if failed:
            raise RuntimeError(f"ranks {failed} failed")  # marks the run Failed with this message
    print(f"{RANKS} ranks logged {RANKS * (STEPS + 1)} points to {EXPERIMENT}/{RUN}")


if __name__ == "__main__":
    main()
