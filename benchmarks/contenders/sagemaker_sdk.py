"""sagemaker-python-sdk 2.257.7: `Run.log_metric`, the sink users of SageMaker Experiments know.

Runs in benchmarks/.venvs/sagemaker. A `sagemaker.session.Session` gets its own boto3 clients:
`sagemaker_client` on the moto server (the run's create/update calls) and `sagemaker_metrics_client`
on the metrics fake. The SDK sends BatchPutMetrics on the caller's thread every 10th call, so its
caller cost *is* its delivery: close only flushes the last partial batch.
"""

from __future__ import annotations

import time

import _common
import boto3
from botocore.config import Config
from sagemaker.experiments.run import Run
from sagemaker.session import Session


def sagemaker_session(args) -> Session:
    boto = boto3.Session(region_name="us-east-1")
    # One request per call and no retries: moto answers 500 to a few calls the SDK may make, and
    # botocore's default retries would spend seconds on each. The fake never fails here.
    config = Config(retries={"total_max_attempts": 1}, max_pool_connections=10)
    return Session(boto_session=boto,
                   sagemaker_client=boto.client("sagemaker", endpoint_url=args.moto, config=config),
                   sagemaker_metrics_client=boto.client("sagemaker-metrics", endpoint_url=args.fake,
                                                        config=config))


def open_run(session: Session) -> Run:
    return Run(experiment_name=_common.EXPERIMENT, run_name=_common.run_name("sagemaker"), sagemaker_session=session)


def log_with(run: Run):
    return lambda name, value, step: run.log_metric(name, value, step=step)


def points(args, session: Session) -> dict:
    """The points and the bursty workloads."""
    started = time.perf_counter()
    with open_run(session) as run:
        result = _common.log_points(log_with(run), args)
    return {**result, "e2e_s": time.perf_counter() - started}


def runs(args, session: Session) -> dict:
    return _common.log_runs(args, lambda: open_run(session), log_with)


def train(args, session: Session) -> dict:
    return _common.train(args, lambda: open_run(session), lambda run, work: _common.logging_step(work, log_with(run)))


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    session = sagemaker_session(args)
    cpu = _common.cpu_now()
    result = {"points": points, "bursty": points, "runs": runs, "train": train}[args.workload](args, session)
    _common.emit(result, _common.cpu_now() - cpu)


if __name__ == "__main__":
    main()
