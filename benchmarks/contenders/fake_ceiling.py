"""The metrics fake's own ceiling: valid 10-point BatchPutMetrics bodies from a bare aiohttp client,
32 in flight on keep-alive connections, unsigned (the fake does not check signatures). Shown beside
the contenders so that a contender's delivery rate can be told apart from the fake's limit.

Runs in sagerun's venv; bounded by --deadline seconds (default 60, the runner passes 3).
"""

from __future__ import annotations

import asyncio
import time

import _common
import aiohttp
import orjson

IN_FLIGHT = 32  # sagerun goes up to 64 in flight: the fake is pushed at least as hard


async def hammer(args) -> dict:
    body = orjson.dumps({"TrialComponentName": _common.run_name("ceiling"), "MetricData": [
        {"MetricName": name, "Value": 0.5, "Step": 1, "Timestamp": time.time()} for name in _common.METRICS]})
    sent = 0
    stop = time.perf_counter() + args.deadline
    async with aiohttp.ClientSession(f"{args.fake}") as http:
        async def worker() -> None:
            nonlocal sent
            while time.perf_counter() < stop:
                async with http.put("/BatchPutMetrics", data=body,
                                    headers={"Content-Type": "application/x-amz-json-1.1"}) as response:
                    response.raise_for_status()
                sent += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    elapsed = time.perf_counter() - started
    return {"logged": sent * len(_common.METRICS), "log_s": elapsed, "e2e_s": elapsed}


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    cpu = _common.cpu_now()
    result = asyncio.run(hammer(args))
    _common.emit(result, _common.cpu_now() - cpu)


if __name__ == "__main__":
    main()
