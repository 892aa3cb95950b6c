"""Plain aioboto3: BatchPutMetrics of 10 points straight to the fake, 8 requests in flight, no tracker.

Runs in sagerun's venv (aioboto3 is its dependency). The baseline of the issue's delivery target at
0 ms: points per second per CPU second. It has no logging API, so it has no caller cost: the points
are made up front, and the clock covers sending them all.
"""

from __future__ import annotations

import asyncio
import time

import _common
import aioboto3
from botocore.config import Config

IN_FLIGHT = 8  # what the plain-aioboto3 figure used; more gained nothing there


async def send_all(args, trial_component: str) -> dict:
    now = time.time()
    requests = [[{"MetricName": name, "Value": 0.5, "Step": step, "Timestamp": now} for name in _common.METRICS]
                for step in range(args.steps)]
    config = Config(max_pool_connections=IN_FLIGHT, retries={"total_max_attempts": 1})
    async with aioboto3.Session().client("sagemaker-metrics", region_name="us-east-1",
                                         endpoint_url=args.fake, config=config) as client:
        await client.batch_put_metrics(TrialComponentName=trial_component, MetricData=requests[0])  # warm up
        pending = iter(requests[1:])

        async def worker() -> None:
            for data in pending:  # the workers share one iterator: each request is sent once
                await client.batch_put_metrics(TrialComponentName=trial_component, MetricData=data)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    elapsed = time.perf_counter() - started
    return {"logged": len(requests) * len(_common.METRICS), "log_s": elapsed, "e2e_s": elapsed}


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    cpu = _common.cpu_now()
    result = asyncio.run(send_all(args, _common.run_name("aioboto3")))
    _common.emit(result, _common.cpu_now() - cpu)


if __name__ == "__main__":
    main()
